-- flow.sql — flow control (docs/reference.md#flow-control, docs/flow.md) in one session: bad
-- input, pause and resume, caps per queue, tenant ('*'), flow key and task
-- type, rate limits, debounce.  One transaction on its own queues, rolled
-- back (what needs commits, many workers or time is test/t/flow_control.sh).
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(54);

-- ---- bad input ----
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('bogus', 'x', 1)$$,
                 '23514', NULL, 'flow_limit refuses an unknown scope');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'x', -1)$$,
                 '23514', NULL, 'flow_limit refuses a negative max_running');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, rate) VALUES ('queue', 'x', 0)$$,
                 '23514', NULL, 'flow_limit refuses a rate of 0');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, rate, per) VALUES ('queue', 'x', 1, '0')$$,
                 '23514', NULL, 'flow_limit refuses per = 0');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, burst) VALUES ('queue', 'x', 5)$$,
                 '23514', NULL, 'flow_limit refuses a burst without a rate');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('queue', 'x', 0)$$,
                 '23514', NULL, 'flow_limit refuses a weight of 0');
SELECT throws_ok($$INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', '', 1)$$,
                 '23514', NULL, 'flow_limit refuses an empty name');
SELECT throws_ok($$SELECT taskguard.enqueue('j', flow_key => '')$$, '22023',
                 'flow_key must be 1 to 200 characters, got 0', 'enqueue refuses an empty flow_key');
SELECT throws_ok($$SELECT taskguard.enqueue_many('j', ARRAY['{}']::jsonb[], flow_key => repeat('k', 201))$$,
                 '22023', NULL, 'enqueue_many refuses a flow_key of 201 characters');
SELECT throws_ok($$SELECT taskguard.enqueue('j', debounce => '1 minute')$$, '22023',
                 'debounce and debounce_max need a debounce_key', 'debounce needs a debounce_key');
SELECT throws_ok($$SELECT taskguard.enqueue('j', debounce_key => 'k', debounce => '-1 minute')$$, '22023',
                 NULL, 'enqueue refuses a negative debounce');
SELECT throws_ok($$SELECT taskguard.enqueue('j', debounce_key => 'k', debounce_max => '0')$$, '22023',
                 NULL, 'enqueue refuses debounce_max = 0');
SELECT throws_ok($$SELECT taskguard.pause(NULL)$$, '22023', NULL, 'pause refuses a NULL queue');
SELECT throws_ok($$SELECT taskguard.pause('q', '*')$$, '22023', NULL, 'pause refuses task_name ''*''');
SELECT throws_ok($$SELECT taskguard.resume(NULL)$$, '22004', NULL, 'resume refuses a NULL queue');

-- ---- no limit: the fast path ----
SELECT is(taskguard._flow_active('flow_none'), false, 'no pause or limit: claim() keeps its fast path');

-- ---- pause and resume ----
SELECT taskguard.enqueue('pj', '{}', 'flow_p') AS pj \gset
SELECT is(taskguard.pause('flow_p'), true, 'pause answers true when it pauses');
SELECT is(taskguard.pause('flow_p'), false, 'pause again answers false');
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_p', 'w', 10)), 0, 'a paused queue hands out nothing');
SELECT is((SELECT row(status, attempts)::text FROM taskguard.task WHERE id = :pj), '(ready,0)',
          'the paused task stays ready with no attempt used');
SELECT is(taskguard._flow_active('flow_none'), false, 'a pause leaves the other queues on the fast path');
SELECT is(taskguard.resume('flow_p'), true, 'resume answers true when it resumes');
SELECT is(taskguard.resume('flow_p'), false, 'resume again answers false');
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_p', 'w', 10)), 1, 'a resumed queue hands its task out');
SELECT taskguard.enqueue('pa', '{}', 'flow_p2'), taskguard.enqueue('pb', '{}', 'flow_p2');
SELECT taskguard.pause('flow_p2', 'pa');
SELECT results_eq($$SELECT task_name FROM taskguard.claim('flow_p2', 'w', 10)$$, ARRAY['pb'],
                  'a paused task type stays back, the others go');

-- ---- caps ----
INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'flow_cap', 2);
SELECT taskguard.enqueue('c', '{}', 'flow_cap') FROM generate_series(1, 5);
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_cap', 'w', 10)), 2, 'a queue cap of 2 hands out 2');
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_cap', 'w', 10)), 0, 'and no more while they run');
SELECT is((SELECT count(*)::int FROM taskguard.task WHERE queue = 'flow_cap' AND status = 'ready'
             AND attempts = 0), 3, 'the held-back tasks are ready, no attempt used');

-- the dashboards see the full cap
SELECT is((SELECT row(running, max_running, waiting, held_back)::text FROM taskguard.flow_status
            WHERE scope = 'queue' AND name = 'flow_cap'), '(2,2,3,t)',
          'flow_status: 2 running of 2, 3 waiting, held back');
SELECT ok(taskguard.prometheus_metrics() LIKE
          '%taskguard_flow_running{scope="queue",name="flow_cap",value="flow_cap"} 2%',
          'prometheus_metrics: taskguard_flow_running');
SELECT ok(taskguard.prometheus_metrics() LIKE
          '%taskguard_flow_queue_paused{queue="flow_p2",task_name="pa"} 1%',
          'prometheus_metrics: taskguard_flow_queue_paused');
SELECT is((SELECT waiting FROM taskguard.flow_paused WHERE queue = 'flow_p2'), 1::bigint,
          'flow_paused: the paused task type keeps one task waiting');
UPDATE taskguard.alert_threshold SET threshold = -1 WHERE alert = 'flow_held_back';
SELECT is((SELECT level::text FROM taskguard.alerts WHERE alert = 'flow_held_back:queue:flow_cap'),
          'warning', 'the alert flow_held_back names the limit holding tasks back');

INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('tenant', '*', 1);
SELECT taskguard.enqueue('t', '{}', 'flow_ten', tenant => tn)
  FROM unnest(ARRAY['ta', 'ta', 'tb', 'tb', 'tc']) AS tn;
SELECT results_eq($$SELECT tenant FROM taskguard.claim('flow_ten', 'w', 10) ORDER BY tenant$$,
                  ARRAY['ta', 'tb', 'tc'], 'tenant ''*'' caps each tenant separately');
DELETE FROM taskguard.flow_limit WHERE scope = 'tenant';

INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('flow_key', 'acct-1', 1);
SELECT taskguard.enqueue_many('k', ARRAY['{}', '{}', '{}']::jsonb[], 'flow_key', flow_key => 'acct-1');
SELECT taskguard.enqueue('k', '{}', 'flow_key', flow_key => 'acct-2');
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_key', 'w', 10)), 2,
          'a flow key cap holds back its key only (1 of acct-1, acct-2)');

INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('task_name', 'flow_tn', 0);
SELECT taskguard.enqueue('flow_tn', '{}', 'flow_tnq'), taskguard.enqueue('other', '{}', 'flow_tnq');
SELECT results_eq($$SELECT task_name FROM taskguard.claim('flow_tnq', 'w', 10)$$, ARRAY['other'],
                  'max_running 0 holds a task type back');

-- ---- rate ----
INSERT INTO taskguard.flow_limit (scope, name, rate, per, burst) VALUES ('queue', 'flow_rate', 3, '1 hour', 3);
SELECT taskguard.enqueue('r', '{}', 'flow_rate') FROM generate_series(1, 5);
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_rate', 'w', 10)), 3, 'a burst of 3 hands out 3');
SELECT is((SELECT count(*)::int FROM taskguard.claim('flow_rate', 'w', 10)), 0, 'then none until tokens refill');
SELECT cmp_ok(taskguard._flow_tokens('queue', 'flow_rate', 'flow_rate'), '<', 0.1::real, 'no token left');

-- ---- fair share: tenant fa weight 3, the others 1; fa's 300 tasks are older ----
SELECT 'flow_fair_' || txid_current() AS fq \gset
INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('tenant', 'fa', 3), ('tenant', '*', 1);
SELECT taskguard.enqueue('f', '{}', :'fq', now() - interval '1 hour', tenant => 'fa') FROM generate_series(1, 300);
SELECT taskguard.enqueue('f', '{}', :'fq', now() - interval '1 minute', tenant => 'fb') FROM generate_series(1, 300);
SELECT taskguard.enqueue('f', '{}', :'fq', now() - interval '1 minute', tenant => 'fc') FROM generate_series(1, 300);
CREATE TEMP TABLE fair_got AS
SELECT c.tenant FROM generate_series(1, 100) g, LATERAL taskguard.claim(:'fq', 'w' || g, 1) c;
SELECT cmp_ok((SELECT count(*)::int FROM fair_got WHERE tenant = 'fa'), '>=', 48,
              'fair share: weight 3 of 5 gets its 60 of 100 claims, within 20 % (at least 48)');
SELECT cmp_ok((SELECT count(*)::int FROM fair_got WHERE tenant = 'fa'), '<=', 72, '(at most 72)');
SELECT ok((SELECT bool_and(n BETWEEN 16 AND 24) FROM (SELECT count(*) AS n FROM fair_got
            WHERE tenant IN ('fb', 'fc') GROUP BY tenant) x),
          'weight 1 of 5 gets its 20 of 100, within 20 %, though its tasks are newer');
DELETE FROM taskguard.flow_limit WHERE scope = 'tenant';

-- fair share between flow keys: k1 weight 1, k2 weight 4; k1's tasks are older
INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('flow_key', 'k1', 1), ('flow_key', 'k2', 4);
SELECT taskguard.enqueue_many('f', array_fill('{}'::jsonb, ARRAY[200]), :'fq' || 'k', now() - interval '1 hour',
                              flow_key => 'k1');
SELECT taskguard.enqueue_many('f', array_fill('{}'::jsonb, ARRAY[200]), :'fq' || 'k', now() - interval '1 minute',
                              flow_key => 'k2');
CREATE TEMP TABLE fair_key AS
SELECT c.flow_key FROM generate_series(1, 100) g, LATERAL taskguard.claim(:'fq' || 'k', 'w' || g, 1) c;
SELECT cmp_ok((SELECT count(*)::int FROM fair_key WHERE flow_key = 'k2'), '>=', 64,
              'fair share by flow key: weight 4 of 5 gets its 80 of 100 within 20 % (at least 64)');
SELECT cmp_ok((SELECT count(*)::int FROM fair_key WHERE flow_key = 'k1'), '>=', 16,
              'weight 1 of 5 gets its 20 within 20 % (at least 16), though its tasks are older');
DELETE FROM taskguard.flow_limit WHERE scope = 'flow_key';

-- both groupings weighted: claims share between tenants only (docs/flow.md), in claim
-- order within a tenant; the flow-key weights (k2 4 of 5) do not apply
INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('tenant', '*', 1), ('flow_key', 'k1', 1),
                                                              ('flow_key', 'k2', 4);
SELECT is(taskguard._flow_fair(:'fq' || 'b'), 'tenant', 'tenant and flow-key weights: claims share by tenant');
SELECT taskguard.enqueue_many('f', array_fill('{}'::jsonb, ARRAY[100]), :'fq' || 'b', now() - interval '1 hour',
                              tenant => 'ta', flow_key => 'k1');
SELECT taskguard.enqueue_many('f', array_fill('{}'::jsonb, ARRAY[100]), :'fq' || 'b', now() - interval '1 minute',
                              tenant => 'ta', flow_key => 'k2');
SELECT taskguard.enqueue_many('f', array_fill('{}'::jsonb, ARRAY[200]), :'fq' || 'b', now() - interval '1 minute',
                              tenant => 'tb', flow_key => 'k2');
CREATE TEMP TABLE fair_both AS
SELECT c.tenant, c.flow_key FROM generate_series(1, 100) g, LATERAL taskguard.claim(:'fq' || 'b', 'w' || g, 1) c;
SELECT cmp_ok((SELECT count(*)::int FROM fair_both WHERE tenant = 'ta'), '>=', 40,
              'both weighted: tenant ta gets its half of 100 within 20 % (at least 40)');
SELECT cmp_ok((SELECT count(*)::int FROM fair_both WHERE tenant = 'ta'), '<=', 60,
              '(at most 60: not the flow-key share, which would give k2 80)');
SELECT is((SELECT count(*)::int FROM fair_both WHERE tenant = 'ta' AND flow_key = 'k2'), 0,
          'within tenant ta, claim order: its older k1 tasks first, k2''s weight notwithstanding');
DELETE FROM taskguard.flow_limit WHERE scope IN ('tenant', 'flow_key');

SELECT taskguard._flow_settle();
SELECT is(taskguard._flow_given_back(), '{}'::bigint[], '_flow_given_back: nothing given back, an empty array');

-- ---- debounce ----
SELECT taskguard.enqueue('deb', '{"v": 1}', 'flow_deb', debounce_key => 'doc-1', debounce => '1 hour') AS d1 \gset
SELECT taskguard.enqueue('deb', '{"v": 2}', 'flow_deb', debounce_key => 'doc-1', debounce => '1 hour') AS d2 \gset
SELECT is(:d2, :d1, 'a second enqueue with the key returns the first task');
SELECT is((SELECT args FROM taskguard.task WHERE id = :d1), '{"v": 2}'::jsonb, 'with the last args');
SELECT is((SELECT count(*)::int FROM taskguard.task WHERE task_name = 'deb'), 1, 'one task');
SELECT taskguard.enqueue('deb', '{"v": 3}', 'flow_deb', debounce_key => 'doc-1', debounce => '1 hour',
                         debounce_max => '10 minutes');
SELECT is((SELECT run_at FROM taskguard.task WHERE id = :d1), now() + interval '10 minutes',
          'debounce_max bounds run_at from the first enqueue');
SELECT isnt(taskguard.enqueue('deb', '{"v": 4}', 'flow_deb', tenant => 'other-tenant',
                              debounce_key => 'doc-1'), :d1::bigint, 'another tenant gets its own task');

SELECT * FROM finish();
ROLLBACK;
