-- the same cycle hand-written on a plain table: the baseline
INSERT INTO bench_raw (queue, payload) SELECT 'bench', '{}' FROM generate_series(1, 10);
WITH c AS (SELECT id FROM bench_raw WHERE queue = 'bench' AND status = 'ready' AND run_at <= now()
            ORDER BY priority DESC, run_at, id LIMIT 10 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE bench_raw r SET status = 'running', attempts = r.attempts + 1, started_at = now(),
                  lease_expires_at = now() + interval '5 minutes'
             FROM c WHERE r.id = c.id RETURNING r.id, r.attempts)
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS atts FROM u \gset
UPDATE bench_raw r SET status = 'succeeded', finished_at = now()
  FROM unnest(:ids::bigint[], :atts::int[]) AS w(id, att)
 WHERE r.id = w.id AND r.status = 'running' AND r.attempts = w.att;
