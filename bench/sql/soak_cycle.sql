-- soak: enqueue 10, claim up to 12 (retries come back too, so the backlog stays small), complete ~90 %, fail ~10 % with a transient error
SELECT count(*) FROM taskguard.enqueue_many('soak_job', array_fill('{}'::jsonb, ARRAY[10]), 'soak');
SELECT coalesce(array_agg(id) FILTER (WHERE NOT bad), '{}') AS ok_ids,
       coalesce(array_agg(attempts) FILTER (WHERE NOT bad), '{}') AS ok_atts,
       coalesce(array_agg(id) FILTER (WHERE bad), '{}') AS bad_ids,
       coalesce(array_agg(attempts) FILTER (WHERE bad), '{}') AS bad_atts
  FROM (SELECT id, attempts, random() < 0.1 AS bad FROM taskguard.claim('soak', 'soak', 12)) c \gset
SELECT taskguard.complete_many(:ok_ids::bigint[], :ok_atts::int[]);
SELECT count(taskguard.fail(u.id, 'psycopg.errors.SerializationFailure', 'could not serialize access due to concurrent update', '{}', u.att))
  FROM unnest(:bad_ids::bigint[], :bad_atts::int[]) AS u(id, att);
