-- 10_priority.sql — priority levels, tiers and per-task configuration (SPEC §7).
-- Placeholder implementation; the priority capability replaces the functions with C.

CREATE TABLE taskguard.task_config (
    task_name     text PRIMARY KEY,
    base_priority taskguard.priority NOT NULL DEFAULT 'MEDIUM',
    queue         text,
    max_attempts  int CHECK (max_attempts IS NULL OR max_attempts >= 1),
    service       text
);

CREATE TABLE taskguard.customer_tier (
    tier  text PRIMARY KEY,
    sla   interval NOT NULL,
    bonus real NOT NULL DEFAULT 0
);
INSERT INTO taskguard.customer_tier VALUES
    ('enterprise', '15 minutes', 1.0),
    ('premium', '30 minutes', 0.5),
    ('standard', '2 hours', 0),
    ('basic', '8 hours', -0.5);

CREATE TABLE taskguard.priority_queue (
    priority taskguard.priority PRIMARY KEY,
    queue    text NOT NULL
);
INSERT INTO taskguard.priority_queue VALUES
    ('CRITICAL', 'critical'), ('HIGH', 'high'), ('MEDIUM', 'default'),
    ('LOW', 'low'), ('DEFERRED', 'deferred');

CREATE FUNCTION taskguard.priority_level(score real)
RETURNS taskguard.priority
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT CASE WHEN score >= 3.5 THEN 'CRITICAL'
            WHEN score >= 2.5 THEN 'HIGH'
            WHEN score >= 1.5 THEN 'MEDIUM'
            WHEN score >= 0.5 THEN 'LOW'
            ELSE 'DEFERRED' END::taskguard.priority
$$;

CREATE FUNCTION taskguard.calculate_priority(task_name text, context jsonb DEFAULT '{}')
RETURNS taskguard.priority_result
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v_score real;
    v_level taskguard.priority;
BEGIN
    SELECT taskguard._priority_score(c.base_priority) INTO v_score
      FROM taskguard.task_config c WHERE c.task_name = calculate_priority.task_name;
    v_score := coalesce(v_score, 2);
    v_score := v_score + coalesce((SELECT t.bonus FROM taskguard.customer_tier t
                                    WHERE t.tier = context->>'customer_tier'), 0);
    v_score := greatest(0, least(4, v_score));
    v_level := taskguard.priority_level(v_score);
    RETURN (v_level, v_score,
            (SELECT q.queue FROM taskguard.priority_queue q WHERE q.priority = v_level),
            ARRAY['base'])::taskguard.priority_result;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('taskguard.task_config', '');



-- Scheduler step: re-apply aging and SLA escalation to waiting tasks.
CREATE FUNCTION taskguard._escalate_priorities(batch int)
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;
