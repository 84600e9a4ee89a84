-- The floor of a SKIP LOCKED queue: claim one row and mark it done, one
-- transaction a job, on a plain table (bench_peers_raw, filled by run.sh).
UPDATE bench_peers_raw SET status = 'done', locked_at = now()
 WHERE id = (SELECT id FROM bench_peers_raw WHERE status = 'ready'
              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED);
