-- one worker cycle through taskguard: enqueue 10, claim 10, complete them in one call
SELECT count(*) FROM taskguard.enqueue_many('bench_job', array_fill('{}'::jsonb, ARRAY[10]), 'bench');
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS atts FROM taskguard.claim('bench', 'pgbench', 10) \gset
SELECT taskguard.complete_many(:ids::bigint[], :atts::int[]);
