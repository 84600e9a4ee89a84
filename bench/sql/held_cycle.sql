-- held_snapshot.sh: one worker cycle, enqueue :batch, claim :batch, complete them
-- (pgbench -D batch=N; batch 1 is the issue's enqueue 1 + claim 1 + complete 1)
\if :batch = 1
SELECT taskguard.enqueue('held_job', '{}', 'held');
-- one row even when another client took the task (complete(0) is a no-op)
SELECT coalesce(max(id), 0) AS id, coalesce(max(attempts), 0) AS att FROM taskguard.claim('held', 'pgbench', 1) \gset
SELECT taskguard.complete(:id, NULL, :att);
\else
SELECT count(*) FROM taskguard.enqueue_many('held_job', array_fill('{}'::jsonb, ARRAY[:batch::int]), 'held');
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS atts FROM taskguard.claim('held', 'pgbench', :batch::int) \gset
SELECT taskguard.complete_many(:ids::bigint[], :atts::int[]);
\endif
