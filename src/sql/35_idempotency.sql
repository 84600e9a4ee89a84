-- 35_idempotency.sql — idempotency keys (SPEC §8).  Placeholder: the
-- idempotency capability replaces this file.

-- The existing task for an enqueue key still within its TTL, or NULL.
CREATE FUNCTION taskguard._idempotency_find(key text, tenant text, task_name text)
RETURNS bigint
LANGUAGE sql STABLE
AS $$
SELECT t.id FROM taskguard.task t
 WHERE t.idempotency_key = key AND t.tenant IS NOT DISTINCT FROM tenant
   AND t.enqueued_at > now() - taskguard._setting_interval('taskguard.idempotency_ttl', '24 hours')
 ORDER BY t.id LIMIT 1
$$;

-- Bind a new task to its key; returns the task that owns the key.
CREATE FUNCTION taskguard._idempotency_bind(key text, tenant text, task_name text, task_id bigint)
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT task_id $$;

-- Scheduler step: remove expired keys.
CREATE FUNCTION taskguard._idempotency_expire(batch int)
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;

-- Scheduler step: flush shared-memory counters to tables.
CREATE FUNCTION taskguard._flush_counters()
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;
