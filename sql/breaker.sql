-- breaker: circuit breakers (docs/reference.md#breakers) — the state cycle, probes, rollback,
-- force modes, claim integration, persistence rows and bad input.
\set VERBOSITY terse
SET taskguard.notify = off;

-- the default row
SELECT service, failure_threshold, "window", cooldown, half_open_max_calls, success_threshold
  FROM taskguard.breaker_config;

-- an unknown service is allowed and allocates nothing
SELECT taskguard.breaker_allow('never-seen') AS allowed,
       taskguard._breaker_is_open('never-seen') AS is_open;
SELECT taskguard.breaker_record('never-seen', true) AS success_on_unknown;
SELECT count(*) AS rows_for_unknown FROM taskguard.breaker_status WHERE service = 'never-seen';

-- closed → open at the threshold (3 here), with a long cooldown
INSERT INTO taskguard.breaker_config VALUES ('cyc', 3, '1 minute', '1 hour', 2, 2);
SELECT taskguard.breaker_record('cyc', false) AS r1, taskguard.breaker_record('cyc', true) AS ok,
       taskguard.breaker_record('cyc', false) AS r2;
SELECT state, failures FROM taskguard.breaker_status WHERE service = 'cyc';
SELECT taskguard.breaker_record('cyc', false) AS r3;
SELECT state, mode, failures, opened_at IS NOT NULL AS has_opened_at,
       next_probe_at - opened_at AS until_probe
  FROM taskguard.breaker_status WHERE service = 'cyc';
SELECT taskguard.breaker_allow('cyc') AS allow_open, taskguard._breaker_is_open('cyc') AS is_open;
-- late outcomes while open change nothing
SELECT taskguard.breaker_record('cyc', true) AS late_success;
-- open → half_open once the cooldown has passed (settings re-read after the change)
UPDATE taskguard.breaker_config SET cooldown = '0' WHERE service = 'cyc';
SELECT taskguard._breaker_is_open('cyc') AS is_open_after_cooldown;
SELECT state FROM taskguard.breaker_status WHERE service = 'cyc';
-- half_open lets half_open_max_calls (2) probes through
SELECT taskguard.breaker_allow('cyc') AS p1, taskguard.breaker_allow('cyc') AS p2,
       taskguard.breaker_allow('cyc') AS p3, taskguard._breaker_is_open('cyc') AS is_open;
SELECT state, successes FROM taskguard.breaker_status WHERE service = 'cyc';
-- success_threshold (2) successes close it
SELECT taskguard.breaker_record('cyc', true) AS s1;
SELECT state, successes FROM taskguard.breaker_status WHERE service = 'cyc';
SELECT taskguard.breaker_record('cyc', true) AS s2;
SELECT state, failures, successes, opened_at, next_probe_at
  FROM taskguard.breaker_status WHERE service = 'cyc';
SELECT taskguard.breaker_allow('cyc') AS allow_closed;

-- a failed probe opens it again
INSERT INTO taskguard.breaker_config (service, failure_threshold, cooldown) VALUES ('reo', 1, '1 hour');
SELECT taskguard.breaker_record('reo', false) AS opened;
UPDATE taskguard.breaker_config SET cooldown = '0' WHERE service = 'reo';
SELECT taskguard.breaker_allow('reo') AS probe;
SELECT state FROM taskguard.breaker_status WHERE service = 'reo';
UPDATE taskguard.breaker_config SET cooldown = '1 hour' WHERE service = 'reo';
SELECT taskguard.breaker_record('reo', false) AS probe_failed;
SELECT state, failures, taskguard.breaker_allow('reo') AS allow
  FROM taskguard.breaker_status WHERE service = 'reo';
-- NULL settings in a service row come from '*' (success_threshold 2, 3 probes)
SELECT service, failure_threshold, window_us, cooldown_us, half_open_max_calls, success_threshold
  FROM taskguard._breaker_config_rows() WHERE service = 'reo';

-- failures count even when the caller rolls back
BEGIN;
SELECT taskguard.breaker_record('rb', false) FROM generate_series(1, 5);
ROLLBACK;
SELECT state, failures FROM taskguard.breaker_status WHERE service = 'rb';
SELECT taskguard.breaker_allow('rb') AS allow_after_rollback;
-- the row written inside the rolled-back transaction is gone; the scheduler step writes it
SELECT count(*) AS saved_before FROM taskguard.breaker_saved WHERE service = 'rb';
SELECT taskguard._breaker_maintain() > 0 AS maintain_saved;
SELECT service, state, mode, failures FROM taskguard.breaker_saved WHERE service = 'rb';
SELECT taskguard._breaker_maintain() AS nothing_left;

-- a state change is saved at once
SELECT service, state, mode, failures FROM taskguard.breaker_saved WHERE service IN ('cyc', 'reo')
 ORDER BY service;

-- force modes
SELECT taskguard.breaker_force('fm', 'open');
SELECT state, mode, next_probe_at, taskguard.breaker_allow('fm') AS allow,
       taskguard._breaker_is_open('fm') AS is_open
  FROM taskguard.breaker_status WHERE service = 'fm';
SELECT taskguard.breaker_record('fm', true) AS forced_stays_open;
SELECT taskguard.breaker_force('fm', 'disabled');
SELECT state, mode, taskguard.breaker_allow('fm') AS allow, taskguard._breaker_is_open('fm') AS is_open
  FROM taskguard.breaker_status WHERE service = 'fm';
SELECT service, state, mode FROM taskguard.breaker_saved WHERE service = 'fm';
-- disabled still counts: a closed breaker opens underneath but keeps allowing
SELECT taskguard.breaker_force('dis', 'disabled');
SELECT taskguard.breaker_record('dis', false) FROM generate_series(1, 5);
SELECT state, mode, failures, taskguard.breaker_allow('dis') AS allow
  FROM taskguard.breaker_status WHERE service = 'dis';
-- auto: back to normal (open, 30 s cooldown from '*')
SELECT taskguard.breaker_force('dis', 'auto');
SELECT state, mode, taskguard.breaker_allow('dis') AS allow FROM taskguard.breaker_status WHERE service = 'dis';
-- 'auto' on an unknown service allocates nothing
SELECT taskguard.breaker_force('nothing-here', 'auto');
SELECT count(*) AS rows_for_auto FROM taskguard.breaker_status WHERE service = 'nothing-here';
-- reset: closed, automatic, counters cleared
SELECT taskguard.breaker_reset('fm'), taskguard.breaker_reset('dis'), taskguard.breaker_reset('unknown');
SELECT service, state, mode, failures, successes, opened_at FROM taskguard.breaker_status
 WHERE service IN ('fm', 'dis') ORDER BY service;
SELECT service, state, mode FROM taskguard.breaker_saved WHERE service IN ('fm', 'dis', 'unknown')
 ORDER BY service;
SELECT taskguard.breaker_allow('fm') AS allow_fm, taskguard.breaker_allow('dis') AS allow_dis;

-- claim() skips an open service without using up attempts
SELECT taskguard.breaker_force('pay', 'open');
SELECT taskguard.enqueue('charge', '{"n":1}', queue => 'brk', service => 'pay') AS t1 \gset
SELECT taskguard.enqueue('plain', '{"n":2}', queue => 'brk') AS t2 \gset
SELECT task_name FROM taskguard.claim('brk', 'w', 10);
SELECT status, attempts FROM taskguard.task WHERE id = :t1;
SELECT taskguard.claim('brk', 'w', 10);
SELECT taskguard.breaker_force('pay', 'auto');
SELECT taskguard.breaker_reset('pay');
SELECT task_name, attempts FROM taskguard.claim('brk', 'w', 10);
-- complete() records a success (nothing to allocate for a closed breaker)
SELECT taskguard.complete(:t1) AS completed;
SELECT count(*) AS rows_for_pay_after_success FROM taskguard.breaker_status
 WHERE service = 'pay' AND failures > 0;

-- claim() takes half-open probes only for the rows it returns
INSERT INTO taskguard.breaker_config VALUES ('probe', 1, '1 minute', '1 hour', 1, 1);
SELECT taskguard.breaker_record('probe', false) AS opened;
SELECT count(taskguard.enqueue('call', jsonb_build_object('n', i), queue => 'prb', service => 'probe'))
    AS enqueued FROM generate_series(1, 3) i;
SELECT count(*) AS claimed_while_open FROM taskguard.claim('prb', 'w', 10);
UPDATE taskguard.breaker_config SET cooldown = '0' WHERE service = 'probe';
SELECT count(*) AS claimed_half_open FROM taskguard.claim('prb', 'w', 10);
SELECT status, attempts, count(*) FROM taskguard.task WHERE queue = 'prb' GROUP BY 1, 2 ORDER BY 1;
SELECT state FROM taskguard.breaker_status WHERE service = 'probe';
SELECT count(*) AS no_probe_left FROM taskguard.claim('prb', 'w', 10);
-- the probe task succeeds: the breaker closes and the others run
SELECT taskguard.complete(id) AS probe_done FROM taskguard.task WHERE queue = 'prb' AND status = 'running';
SELECT state FROM taskguard.breaker_status WHERE service = 'probe';
SELECT count(*) AS claimed_closed FROM taskguard.claim('prb', 'w', 10);
-- the failure hook opens a breaker the same way (fail() calls it for network types)
SELECT taskguard._breaker_task_done('hook', false) FROM generate_series(1, 5);
SELECT state, failures FROM taskguard.breaker_status WHERE service = 'hook';

-- the view merges saved rows that are not live
INSERT INTO taskguard.breaker_saved (service, state, mode, failures, opened_at, changed_at, version)
VALUES ('only-saved', 'open', 'auto', 7, '2020-01-01 00:00:00+00', '2020-01-01 00:00:00+00', 1);
SELECT service, state, mode, failures, next_probe_at - opened_at AS until_probe
  FROM taskguard.breaker_status WHERE service = 'only-saved';

-- bad input
SELECT taskguard.breaker_allow(NULL);
SELECT taskguard.breaker_allow('');
SELECT taskguard.breaker_allow(repeat('x', 201));
SELECT taskguard.breaker_allow(repeat('x', 10 * 1024 * 1024));
SELECT taskguard.breaker_allow(repeat('é', 100)) AS two_hundred_bytes;
SELECT taskguard.breaker_record('x', NULL);
SELECT taskguard.breaker_record(NULL, false);
SELECT taskguard.breaker_record('', true);
SELECT taskguard.breaker_reset(NULL);
SELECT taskguard.breaker_reset(repeat('x', 4 * 1024 * 1024));
SELECT taskguard.breaker_force('x', NULL);
SELECT taskguard.breaker_force('x', 'OPEN');
SELECT taskguard.breaker_force('x', '');
SELECT taskguard.breaker_force('x', repeat('y', 10 * 1024 * 1024));
SELECT taskguard.breaker_force(NULL, 'open');
-- the hooks never raise on bad input
SELECT taskguard._breaker_is_open(NULL) AS n, taskguard._breaker_is_open('') AS e,
       taskguard._breaker_is_open(repeat('x', 10 * 1024 * 1024)) AS huge;
SELECT taskguard._breaker_claimed(NULL) AS n, taskguard._breaker_claimed('') AS e,
       taskguard._breaker_claimed(repeat('x', 201)) AS long;
SELECT taskguard._breaker_task_done(NULL, false), taskguard._breaker_task_done('x', NULL),
       taskguard._breaker_task_done(repeat('x', 10 * 1024 * 1024), false);
SELECT count(*) AS rows_for_x FROM taskguard.breaker_status WHERE service = 'x';
-- bad settings are refused
INSERT INTO taskguard.breaker_config (service, failure_threshold) VALUES ('bad', 0);
INSERT INTO taskguard.breaker_config (service, "window") VALUES ('bad', '0');
INSERT INTO taskguard.breaker_config (service, cooldown) VALUES ('bad', '-1 second');
INSERT INTO taskguard.breaker_config (service, cooldown) VALUES ('bad', '10 years');
INSERT INTO taskguard.breaker_config (service, half_open_max_calls) VALUES ('bad', -1);
INSERT INTO taskguard.breaker_config (service, success_threshold) VALUES ('bad', 2147483647);
INSERT INTO taskguard.breaker_config (service) VALUES ('');
UPDATE taskguard.breaker_config SET cooldown = NULL WHERE service = '*';
-- without a '*' row the built-in defaults apply
BEGIN;
DELETE FROM taskguard.breaker_config WHERE service = '*';
SELECT failure_threshold, window_us, cooldown_us, half_open_max_calls, success_threshold
  FROM taskguard._breaker_config_rows() WHERE service = 'reo';
ROLLBACK;
-- the trigger function is only a trigger
SELECT taskguard._config_changed();
