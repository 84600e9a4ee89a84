-- 10_priority.sql — priority levels, tiers and per-task configuration (docs/reference.md#priority):
-- the configuration tables, calculate_priority/priority_level (C, src/priority.c,
-- which caches the tables per backend; the triggers below invalidate that cache)
-- and the scheduler's escalation step.

CREATE TABLE taskguard.task_config (
    task_name     text PRIMARY KEY,
    base_priority taskguard.priority NOT NULL DEFAULT 'MEDIUM',
    queue         text,
    max_attempts  int CHECK (max_attempts IS NULL OR max_attempts >= 1),
    service       text
);

-- bonus is a finite number in [-4, 4] (the score is clamped to [0, 4], so a
-- larger one means nothing more; NaN would sort first in claim()); the SLA is
-- not negative.
CREATE TABLE taskguard.customer_tier (
    tier  text PRIMARY KEY,
    sla   interval NOT NULL,
    bonus real NOT NULL DEFAULT 0,
    CONSTRAINT customer_tier_bonus_range CHECK (bonus BETWEEN -4 AND 4),
    CONSTRAINT customer_tier_sla_not_negative CHECK (sla >= interval '0')
);
INSERT INTO taskguard.customer_tier VALUES
    ('enterprise', '15 minutes', 1.0),
    ('premium', '30 minutes', 0.5),
    ('standard', '2 hours', 0),
    ('basic', '8 hours', -0.5);
SELECT pg_catalog.pg_extension_config_dump('taskguard.customer_tier', '');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.customer_tier
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('tier');

CREATE TABLE taskguard.priority_queue (
    priority taskguard.priority PRIMARY KEY,
    queue    text NOT NULL
);
INSERT INTO taskguard.priority_queue VALUES
    ('CRITICAL', 'critical'), ('HIGH', 'high'), ('MEDIUM', 'default'),
    ('LOW', 'low'), ('DEFERRED', 'deferred');
SELECT pg_catalog.pg_extension_config_dump('taskguard.priority_queue', '');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.priority_queue
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('priority');

CREATE FUNCTION taskguard.priority_level(score real)
RETURNS taskguard.priority
AS 'MODULE_PATHNAME', 'taskguard_priority_level'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- context: customer_tier, age_hours (or enqueued_at), failure_type.
CREATE FUNCTION taskguard.calculate_priority(task_name text, context jsonb DEFAULT '{}')
RETURNS taskguard.priority_result
AS 'MODULE_PATHNAME', 'taskguard_calculate_priority'
LANGUAGE C STABLE PARALLEL SAFE;

-- The aging + SLA pressure a task enqueued at enqueued_at has earned by as_of
-- (NULL: now); the escalation step adds it to a task's un-aged base score.
CREATE FUNCTION taskguard._escalation_bonus(customer_tier text, enqueued_at timestamptz,
                                            as_of timestamptz DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'taskguard_escalation_bonus'
LANGUAGE C STABLE PARALLEL SAFE;

-- Every backend caches the three tables above; a change tells them to re-read.
CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.task_config
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();
CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.customer_tier
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();
CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.priority_queue
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

SELECT pg_catalog.pg_extension_config_dump('taskguard.task_config', '');




-- What the escalation step last did to a waiting task: its un-aged base
-- score and the score it set.
CREATE TABLE taskguard.task_escalation (
    task_id         bigint PRIMARY KEY,
    base_score      real NOT NULL,
    escalated_score real NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.task_escalation', '');

-- Scheduler step: re-apply aging and SLA escalation to ready tasks, raising
-- only those whose level changes, at most batch of them, skipping rows that
-- claim() holds.  Tasks younger than the smallest threshold (half the
-- shortest SLA, or 6 h) are not looked at.
--
-- new score = clamp(un-aged base + bonus earned by now).  The un-aged base is
--  * the remembered base while the task still has the score escalation set;
--  * else, for a task that never ran, its enqueue-time score (age 0 then);
--  * else the score was set by someone else — a retry recomputed it with the
--    aging earned by then, or requeue()/an operator chose it — at about
--    run_at: that score minus the bonus earned by run_at, so aging is never
--    counted twice and only what is earned afterwards is added.
CREATE FUNCTION taskguard._escalate_priorities(batch int)
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
