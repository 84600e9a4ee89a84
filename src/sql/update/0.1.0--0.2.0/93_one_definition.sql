-- 0.2.0: one definition of each thing (issue 21).
-- taskguard.database is a superuser-only setting: scheduler_status shows it
-- only to a caller who may read settings (NULL for the others, not an error).
CREATE OR REPLACE VIEW taskguard.scheduler_status AS
SELECT s.pid, s.launcher_pid,
       CASE WHEN pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE')
            THEN pg_catalog.current_setting('taskguard.database', true) END AS database,
       s.started_at, s.last_pass_at, s.last_pass_ms, s.passes,
       s.last_pass_counts, s.total_counts, s.last_error
  FROM taskguard._scheduler_status() s;
ALTER VIEW taskguard.scheduler_status SET (security_invoker = true);

-- NULL arguments are refused with one phrasing, argument "x" must not be NULL (22004).
CREATE OR REPLACE FUNCTION taskguard.idempotency_release(key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_live boolean;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'argument "key" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF key = '' THEN
        RAISE EXCEPTION 'key must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM taskguard.idempotency_record r
     WHERE r.tenant = coalesce(taskguard._effective_tenant(NULL), '')
       AND r.key_digest = taskguard._idempotency_digest(idempotency_release.key)
    RETURNING r.expires_at > now() INTO v_live;
    RETURN coalesce(v_live, false);
END
$$;
CREATE OR REPLACE FUNCTION taskguard.dlq_purge(older_than interval DEFAULT '30 days',
    statuses taskguard.dlq_status[] DEFAULT '{RESOLVED}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval, got %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF statuses IS NULL THEN
        RAISE EXCEPTION 'argument "statuses" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    WITH gone AS (
        DELETE FROM taskguard.dead_letter d
         WHERE d.status = ANY(statuses)
           AND coalesce(d.resolved_at, d.last_failed_at) < now() - older_than
        RETURNING d.id, d.task_id),
    unlinked AS (
        UPDATE taskguard.task t
           SET failure_id = NULL,
               status = CASE WHEN t.status = 'failed' THEN 'cancelled' ELSE t.status END,
               finished_at = CASE WHEN t.status = 'failed' THEN now() ELSE t.finished_at END
          FROM gone WHERE t.id = gone.task_id AND t.failure_id = gone.id
        RETURNING 1)
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END
$$;

-- One trigger function for every table a backend caches (_config_changed,
-- created by 05_config_changed.sql, since flow control's tables use it too);
-- the four 0.1.0 functions that did the same go.  Their C symbols stay in the
-- library, so a 0.1.0 schema keeps working until updated.
DO $$
DECLARE
    v_trigger text;
    v_table   text;
BEGIN
    FOR v_trigger, v_table IN
        VALUES ('tenant_member_changed', 'tenant_member'),
               ('tenant_bound_role_changed', 'tenant_bound_role'),
               ('priority_config_changed', 'task_config'),
               ('priority_config_changed', 'customer_tier'),
               ('priority_config_changed', 'priority_queue'),
               ('classification_rule_invalidate', 'classification_rule'),
               ('retry_policy_invalidate', 'retry_policy'),
               ('breaker_config_changed', 'breaker_config')
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
                       ' ON taskguard.%I FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed()',
                       v_trigger, v_table);
    END LOOP;
END
$$;
DROP FUNCTION taskguard._tenant_member_changed();
DROP FUNCTION taskguard._priority_config_changed();
DROP FUNCTION taskguard._classify_invalidate();
DROP FUNCTION taskguard._breaker_config_changed();

-- One batched delete (_delete_batch) for the scheduler's pruning steps.
CREATE FUNCTION taskguard._delete_batch(tbl regclass, cond text, batch int,
    order_by text DEFAULT NULL, skip_locked boolean DEFAULT true, key text DEFAULT 'ctid',
    arg1 timestamptz DEFAULT NULL, arg2 timestamptz DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    EXECUTE format('DELETE FROM %1$s x WHERE x.%2$I = ANY (ARRAY('
                   'SELECT x.%2$I FROM %1$s x WHERE %3$s%4$s LIMIT $3%5$s))%6$s',
                   tbl, key, cond, ' ORDER BY ' || order_by,
                   CASE WHEN skip_locked THEN ' FOR UPDATE SKIP LOCKED' ELSE '' END,
                   CASE WHEN key = 'ctid' THEN ' AND ' || cond ELSE '' END)
      USING arg1, arg2, batch;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
REVOKE ALL ON FUNCTION taskguard._delete_batch(regclass, text, int, text, boolean, text, timestamptz, timestamptz) FROM PUBLIC;
CREATE OR REPLACE FUNCTION taskguard._prune_tasks(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n      int;
    v_before timestamptz := now() - taskguard._setting_interval('taskguard.task_retention', '1 day');
    -- tasks that passed retention in the last two minutes: older ones were
    -- pruned by earlier passes (src/scan_window.c)
    v_since  timestamptz := taskguard._scan_since('prune_tasks', v_before - interval '2 minutes');
BEGIN
    v_n := taskguard._delete_batch('taskguard.task',
        $c$x.status IN ('succeeded', 'cancelled') AND x.finished_at < $1 AND x.finished_at >= $2$c$,
        batch, key => 'id', arg1 => v_before, arg2 => v_since);
    IF v_since = '-infinity' AND v_n < batch THEN
        PERFORM taskguard._scan_full_done('prune_tasks');
    END IF;
    RETURN v_n;
END
$$;
CREATE OR REPLACE FUNCTION taskguard._idempotency_expire(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    RETURN taskguard._delete_batch('taskguard.idempotency_record', 'x.expires_at <= now()',
                                   greatest(batch, 1));
END
$$;
CREATE OR REPLACE FUNCTION taskguard._prune_failures(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    -- events are only ever inserted: no row lock to take
    v_n := taskguard._delete_batch('taskguard.failure_event', 'x.time < $1', batch,
               order_by => 'x.time', skip_locked => false,
               arg1 => now() - taskguard._setting_interval('taskguard.event_retention', '30 days'));
    RETURN v_n + taskguard._delete_batch('taskguard.dead_letter',
               $c$x.status = 'RESOLVED' AND x.resolved_at < $1$c$, batch,
               order_by => 'x.resolved_at', key => 'id',
               arg1 => now() - taskguard._setting_interval('taskguard.dlq_retention', '30 days'));
END
$$;
CREATE OR REPLACE FUNCTION taskguard._rollup(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    v_n := taskguard._rollup_dlq(batch) + taskguard._rollup_events(batch);
    v_n := v_n + taskguard._delete_batch('taskguard.activity_minute', 'x.minute < $1', batch,
                     skip_locked => false, arg1 => now() - interval '25 hours');
    RETURN v_n + taskguard._delete_batch('taskguard.failure_hourly', 'x.bucket < $1', batch,
                     skip_locked => false,
                     arg1 => now() - taskguard._setting_interval('taskguard.event_retention', '30 days')
                           - interval '1 hour');
END
$$;
CREATE OR REPLACE FUNCTION taskguard._escalate_priorities(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_young interval;
    v_n     int;
BEGIN
    SELECT least(interval '6 hours', min(c.sla) / 2) INTO v_young
      FROM taskguard.customer_tier c WHERE c.sla > interval '0';
    v_young := coalesce(v_young, interval '6 hours');

    WITH cand AS (
        SELECT t.id, b.base, s.score
          FROM taskguard.task t
          LEFT JOIN taskguard.task_escalation e ON e.task_id = t.id
         CROSS JOIN LATERAL (SELECT CASE
                WHEN e.escalated_score = t.priority_score THEN e.base_score
                WHEN t.attempts = 0 AND e.task_id IS NULL THEN t.priority_score
                ELSE t.priority_score - taskguard._escalation_bonus(
                         t.customer_tier, t.enqueued_at, greatest(t.run_at, t.enqueued_at))
                END AS base) b
         CROSS JOIN LATERAL (SELECT least(4, greatest(0, b.base +
                    taskguard._escalation_bonus(t.customer_tier, t.enqueued_at)))::real AS score) s
         WHERE t.status = 'ready' AND t.priority_score < 4
           AND t.enqueued_at <= now() - v_young
           AND s.score > t.priority_score
           AND taskguard.priority_level(s.score) > t.priority
         LIMIT greatest(batch, 1)
         FOR UPDATE OF t SKIP LOCKED),
    upd AS (
        UPDATE taskguard.task t
           SET priority = taskguard.priority_level(c.score), priority_score = c.score
          FROM cand c
         WHERE t.id = c.id
        RETURNING t.id)
    INSERT INTO taskguard.task_escalation AS x (task_id, base_score, escalated_score)
    SELECT c.id, c.base, c.score FROM cand c JOIN upd u ON u.id = c.id
    ON CONFLICT (task_id) DO UPDATE
       SET base_score = EXCLUDED.base_score, escalated_score = EXCLUDED.escalated_score;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    -- Forget tasks that finished or were pruned.
    PERFORM taskguard._delete_batch('taskguard.task_escalation',
        $c$NOT EXISTS (SELECT 1 FROM taskguard.task t
                        WHERE t.id = x.task_id AND t.status NOT IN ('succeeded', 'cancelled'))$c$,
        greatest(batch, 1), skip_locked => false, key => 'task_id');
    RETURN v_n;
END
$$;

-- One body (_dlq_close) for _dlq_resolve and dlq_abandon.
CREATE FUNCTION taskguard._dlq_close(ids bigint[], new_status taskguard.dlq_status,
    resolution text)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_resolve boolean := new_status = 'RESOLVED';
    v_ids     bigint[];
BEGIN
    WITH done AS (
        UPDATE taskguard.dead_letter d
           SET status = new_status, next_retry_at = NULL, resolution = _dlq_close.resolution,
               resolved_at = CASE WHEN v_resolve THEN now() ELSE d.resolved_at END
         WHERE d.id = ANY(ids)
           AND CASE WHEN v_resolve THEN d.status <> 'RESOLVED'
                    ELSE d.status IN ('PENDING', 'RETRYING') END
        RETURNING d.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM done;
    PERFORM taskguard._dlq_hold_tasks(v_ids, v_resolve);
    RETURN cardinality(v_ids);
END
$$;
REVOKE ALL ON FUNCTION taskguard._dlq_close(bigint[], taskguard.dlq_status, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION taskguard._dlq_resolve(ids bigint[], note text)
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT taskguard._dlq_close(ids, 'RESOLVED', coalesce(note, 'resolved')) $$;
CREATE OR REPLACE FUNCTION taskguard.dlq_abandon(ids bigint[], reason text DEFAULT NULL)
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT taskguard._dlq_close(ids, 'ABANDONED', coalesce(reason, 'abandoned by operator')) $$;

-- Roles granted a level under 0.1.0 may execute each new helper wherever they
-- may execute the function it serves (as grant_access gives it them now).
DO $$
DECLARE
    v_new  regprocedure;
    v_old  regprocedure;
    v_role regrole;
BEGIN
    FOR v_new, v_old IN
        VALUES ('taskguard._dlq_close(bigint[], taskguard.dlq_status, text)'::regprocedure,
                'taskguard._dlq_resolve(bigint[], text)'::regprocedure),
               ('taskguard._delete_batch(regclass, text, int, text, boolean, text, timestamptz, timestamptz)',
                'taskguard._prune_tasks(int)')
    LOOP
        FOR v_role IN
            SELECT DISTINCT x.grantee::regrole
              FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) x
             WHERE p.oid = v_old AND x.privilege_type = 'EXECUTE'
               AND x.grantee <> p.proowner AND x.grantee <> 0
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_new, v_role);
        END LOOP;
    END LOOP;
END
$$;
