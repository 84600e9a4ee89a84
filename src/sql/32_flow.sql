-- 32_flow.sql — flow control inside claim() (docs/reference.md#flow-control, docs/flow.md):
-- concurrency caps, rate limits and pause, kept by src/flow.c; debounce is
-- in enqueue() (30_queue.sql).  claim() takes the path below only while a
-- pause or a limit concerns its queue (taskguard._flow_active).

-- Limits, edited by admins; every backend sees an edit at its next claim.
CREATE TABLE taskguard.flow_limit (
    scope       text NOT NULL
                CHECK (scope IN ('queue', 'task_name', 'service', 'tenant', 'flow_key')),
    name        text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 1000),
    max_running int CHECK (max_running >= 0),
    rate        int CHECK (rate >= 1),
    per         interval NOT NULL DEFAULT '1 second'
                CHECK (per > interval '0' AND per <= interval '1 day'),
    burst       int CHECK (burst >= 1),
    weight      real NOT NULL DEFAULT 1 CHECK (weight > 0 AND weight <= 1000000),
    PRIMARY KEY (scope, name),
    CONSTRAINT flow_limit_burst_needs_rate CHECK (burst IS NULL OR rate IS NOT NULL)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.flow_limit', '');

-- Paused queues ('*') and task types in a queue; pause() and resume() edit it.
CREATE TABLE taskguard.flow_pause (
    queue     text NOT NULL CHECK (octet_length(queue) BETWEEN 1 AND 800),
    task_name text NOT NULL DEFAULT '*' CHECK (octet_length(task_name) BETWEEN 1 AND 4000),
    paused_at timestamptz NOT NULL DEFAULT now(),
    paused_by text NOT NULL DEFAULT current_user,
    PRIMARY KEY (queue, task_name)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.flow_pause', '');

-- An edit is seen by every backend's next claim: the one trigger of every
-- cached configuration table (05_tenant.sql, TgConfigCache).
CREATE TRIGGER flow_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.flow_limit
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();
CREATE TRIGGER flow_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.flow_pause
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

-- Does a pause or limit concern this queue?  (claim()'s one call when none does.)
CREATE FUNCTION taskguard._flow_active(queue text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_flow_active'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Paused, or a limit on the whole queue full: a claim looks at no row.
CREATE FUNCTION taskguard._flow_queue_closed(queue text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_flow_queue_closed'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- May a task with these values start now?  (No side effect.)
CREATE FUNCTION taskguard._flow_admit(queue text, task_name text, service text, tenant text,
    flow_key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_flow_admit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Check and reserve in one step (a running slot, a token of each rate limit);
-- _flow_settle gives back what the claim did not use.
CREATE FUNCTION taskguard._flow_take(id bigint, queue text, task_name text, service text,
    tenant text, flow_key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_flow_take'
-- dear, so that a pick filters on its cheap conditions (due, breaker) first
LANGUAGE C VOLATILE PARALLEL UNSAFE COST 1000;

-- Give back the reservations the claim did not use; takes refused since.
CREATE FUNCTION taskguard._flow_settle()
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_flow_settle'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The tasks whose reservations the last _flow_settle gave back (claim looks past them).
CREATE FUNCTION taskguard._flow_given_back()
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'taskguard_flow_given_back'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Tokens left in the bucket of limit (scope, name) for value.
CREATE FUNCTION taskguard._flow_tokens(scope text, name text, value text)
RETURNS real
AS 'MODULE_PATHNAME', 'taskguard_flow_tokens'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Fair share (stride scheduling, src/flow.c): by 'tenant' or 'flow_key'
-- while a row of that scope carries a weight (weight only, or not 1;
-- tenants first), else NULL; the order to try a priority level's groups in;
-- a group handed a task moves on by 1 / weight.
CREATE FUNCTION taskguard._flow_fair(queue text)
RETURNS text
AS 'MODULE_PATHNAME', 'taskguard_flow_fair'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._flow_fair_order(queue text, scope text, groups text[])
RETURNS text[]
AS 'MODULE_PATHNAME', 'taskguard_flow_fair_order'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION taskguard._flow_fair_charge(queue text, scope text, value text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_flow_fair_charge'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._flow_task_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_flow_task_trigger'
LANGUAGE C;

-- Every move of a row into or out of running, whoever makes it (ALWAYS:
-- a logical-replication apply worker's too).
CREATE TRIGGER task_flow_count BEFORE UPDATE OF status ON taskguard.task
    FOR EACH ROW WHEN ((OLD.status = 'running') <> (NEW.status = 'running'))
    EXECUTE FUNCTION taskguard._flow_task_trigger();
CREATE TRIGGER task_flow_count_insert BEFORE INSERT ON taskguard.task
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION taskguard._flow_task_trigger();
CREATE TRIGGER task_flow_count_delete BEFORE DELETE ON taskguard.task
    FOR EACH ROW WHEN (OLD.status = 'running') EXECUTE FUNCTION taskguard._flow_task_trigger();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count;
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count_insert;
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count_delete;

-- claim() while a pause or limit concerns the queue: the pick takes a row
-- only if _flow_take reserves it (a running slot and a token of every
-- matching limit), so rows a limit holds back are skipped; a reservation
-- the claim did not use (a row another claim locked first, a breaker with
-- no probe left) is given back by _flow_settle, and then the claim looks
-- again, past those rows (_flow_given_back), at most four times in all.
CREATE FUNCTION taskguard._claim_flow(queue text, worker text, batch int, lease interval,
    scope text[])
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_sort = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_left   int := batch;
    v_n      int;
    v_score  real;
    v_by     text;
    v_group  text;
    v_id     bigint;
    v_skip   bigint[] := '{}';
BEGIN
    IF taskguard._flow_queue_closed(queue) THEN
        RETURN;
    END IF;
    -- Fair share: one task at a time from the top priority level's tenants
    -- (or flow keys), the one furthest behind its weighted share first.
    -- Whatever that does not hand out (limits, locks) the plain path may.
    v_by := taskguard._flow_fair(queue);
    WHILE v_left > 0 AND v_by IS NOT NULL LOOP
        v_score := NULL;
        SELECT -p.priority_score INTO v_score FROM taskguard.task p
         WHERE p.queue = _claim_flow.queue AND p.status = 'ready' AND p.run_at <= now()
           AND (scope IS NULL OR p.tenant = ANY (scope))
         ORDER BY -p.priority_score LIMIT 1;
        EXIT WHEN v_score IS NULL;
        v_n := 0;
        FOREACH v_group IN ARRAY taskguard._flow_fair_order(queue, v_by,
                                     taskguard._flow_groups(queue, v_score, scope, v_by))
        LOOP
            -- one pick per form, so that a group's is a range of its index
            v_id := NULL;
            IF v_by = 'tenant' AND v_group IS NOT NULL THEN
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.tenant = v_group AND p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSIF v_by = 'flow_key' AND v_group IS NOT NULL THEN
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.flow_key = v_group AND p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND (scope IS NULL OR p.tenant = ANY (scope))
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSE
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND CASE WHEN v_by = 'tenant' THEN p.tenant IS NULL ELSE p.flow_key IS NULL END
                   AND (scope IS NULL OR p.tenant = ANY (scope))
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            END IF;
            v_n := 0;
            IF v_id IS NOT NULL THEN
                RETURN QUERY
                UPDATE taskguard.task t
                   SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                       worker = _claim_flow.worker, lease_expires_at = now() + lease,
                       debounce_key = NULL
                 WHERE t.id = v_id AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
                RETURNING t.*;
                GET DIAGNOSTICS v_n = ROW_COUNT;
            END IF;
            PERFORM taskguard._flow_settle();
            IF v_n > 0 THEN
                PERFORM taskguard._flow_fair_charge(queue, v_by, v_group);
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN v_n = 0;
        v_left := v_left - v_n;
    END LOOP;
    IF v_left <= 0 THEN
        RETURN;
    END IF;
    FOR v_try IN 1..4 LOOP
        IF v_left = 1 THEN
            RETURN QUERY
            UPDATE taskguard.task t
               SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                   worker = _claim_flow.worker, lease_expires_at = now() + lease,
                   debounce_key = NULL
             WHERE t.id = (SELECT p.id FROM taskguard.task p
                            WHERE p.queue = _claim_flow.queue AND p.status = 'ready'
                              AND p.run_at <= now() AND (scope IS NULL OR p.tenant = ANY (scope))
                              AND p.id <> ALL (v_skip)
                              AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                              AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service,
                                                       p.tenant, p.flow_key)
                            ORDER BY -p.priority_score, p.run_at, p.id
                            LIMIT 1
                            FOR UPDATE SKIP LOCKED)
               AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
            RETURNING t.*;
        ELSE
            RETURN QUERY
            WITH picked AS (
                SELECT p.id, p.service FROM taskguard.task p
                 WHERE p.queue = _claim_flow.queue AND p.status = 'ready' AND p.run_at <= now()
                   AND (scope IS NULL OR p.tenant = ANY (scope)) AND p.id <> ALL (v_skip)
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant,
                                            p.flow_key)
                 ORDER BY -p.priority_score, p.run_at, p.id
                 LIMIT v_left
                 FOR UPDATE SKIP LOCKED),
            allowed AS (
                SELECT p.id FROM picked p
                 WHERE p.service IS NULL OR taskguard._breaker_claimed(p.service)),
            claimed AS (
                UPDATE taskguard.task t
                   SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                       worker = _claim_flow.worker, lease_expires_at = now() + lease,
                       debounce_key = NULL
                 WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
                RETURNING t.*)
            SELECT c.* FROM claimed c ORDER BY -c.priority_score, c.run_at, c.id;
        END IF;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_left := v_left - v_n;
        EXIT WHEN taskguard._flow_settle() = 0 OR v_left <= 0;
        -- rows reserved but not had (another claim locked them first): look past them,
        -- or this claim's own reservation would refuse the free task behind them
        v_skip := v_skip || taskguard._flow_given_back();
    END LOOP;
END
$$;

-- The tenants or flow keys (group_by; NULL: tasks without one) with ready, due
-- tasks of a queue at one priority score, among the caller's tenants: a skip
-- scan of task_ready_tenant_idx or task_ready_flow_key_idx, one probe a group.
CREATE FUNCTION taskguard._flow_groups(queue text, neg_score real, tenants text[], group_by text)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF group_by = 'tenant' THEN
        RETURN ARRAY(
            WITH RECURSIVE g (v) AS (
                (SELECT p.tenant FROM taskguard.task p
                  WHERE p.status = 'ready' AND p.queue = _flow_groups.queue
                    AND -p.priority_score = neg_score AND p.tenant IS NOT NULL AND p.run_at <= now()
                  ORDER BY p.tenant LIMIT 1)
                UNION ALL
                SELECT (SELECT p.tenant FROM taskguard.task p
                         WHERE p.status = 'ready' AND p.queue = _flow_groups.queue
                           AND -p.priority_score = neg_score AND p.tenant > g.v AND p.run_at <= now()
                         ORDER BY p.tenant LIMIT 1)
                  FROM g WHERE g.v IS NOT NULL)
            SELECT g.v FROM g WHERE g.v IS NOT NULL AND (tenants IS NULL OR g.v = ANY (tenants))
            UNION ALL
            SELECT NULL WHERE tenants IS NULL AND EXISTS (
                SELECT 1 FROM taskguard.task p
                 WHERE p.status = 'ready' AND p.queue = _flow_groups.queue
                   AND -p.priority_score = neg_score AND p.tenant IS NULL AND p.run_at <= now()));
    END IF;
    RETURN ARRAY(
        WITH RECURSIVE g (v) AS (
            (SELECT p.flow_key FROM taskguard.task p
              WHERE p.status = 'ready' AND p.flow_key IS NOT NULL AND p.queue = _flow_groups.queue
                AND -p.priority_score = neg_score AND p.run_at <= now()
              ORDER BY p.flow_key LIMIT 1)
            UNION ALL
            SELECT (SELECT p.flow_key FROM taskguard.task p
                     WHERE p.status = 'ready' AND p.flow_key IS NOT NULL AND p.queue = _flow_groups.queue
                       AND -p.priority_score = neg_score AND p.flow_key > g.v AND p.run_at <= now()
                     ORDER BY p.flow_key LIMIT 1)
              FROM g WHERE g.v IS NOT NULL)
        SELECT g.v FROM g WHERE g.v IS NOT NULL
        UNION ALL
        SELECT NULL WHERE EXISTS (
            SELECT 1 FROM taskguard.task p
             WHERE p.status = 'ready' AND p.queue = _flow_groups.queue
               AND -p.priority_score = neg_score AND p.flow_key IS NULL AND p.run_at <= now()
               AND (tenants IS NULL OR p.tenant = ANY (tenants))));
END
$$;

-- Pause a queue (task_name NULL) or one task type in it: claim() hands out
-- none of its tasks until resume(); nothing is lost, no attempt is used, and
-- retries stay due.  True if it was not paused.  An admin action (the
-- caller needs INSERT on flow_pause).
CREATE FUNCTION taskguard.pause(queue text, task_name text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF queue IS NULL OR queue = '' OR length(queue) > 200 THEN
        RAISE EXCEPTION 'queue must be 1 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF task_name = '' OR task_name = '*' OR length(task_name) > 1000 THEN
        RAISE EXCEPTION 'task_name must be NULL (the whole queue) or 1 to 1000 characters other than ''*'''
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO taskguard.flow_pause (queue, task_name)
    VALUES (pause.queue, coalesce(pause.task_name, '*'))
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;

-- Resume what pause(queue, task_name) paused; true if it was paused.
CREATE FUNCTION taskguard.resume(queue text, task_name text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF queue IS NULL THEN
        PERFORM taskguard._require(queue, 'queue');
    END IF;
    DELETE FROM taskguard.flow_pause p
     WHERE p.queue = resume.queue AND p.task_name = coalesce(resume.task_name, '*');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM taskguard._notify(queue);
    RETURN true;
END
$$;

-- enqueue(debounce_key => …): insert, or replace the args of the ready,
-- unclaimed task with the same tenant, task name and key and move its run_at
-- (never past its first enqueue + debounce_max).  Parameters prefixed: the
-- statements name columns of the same names.
CREATE FUNCTION taskguard._enqueue_debounced(p_queue text, p_task_name text, p_args jsonb,
    p_priority taskguard.priority, p_score real, p_run_at timestamptz, p_max_attempts int,
    p_tenant text, p_tier text, p_service text, p_idempotency_key text, p_flow_key text,
    p_debounce_key text, p_debounce_max interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_id bigint;
BEGIN
    -- one enqueuer of a key at a time (the ring's partitions allow no unique
    -- index on the key): the next one's statement sees the task this one made
    PERFORM pg_advisory_xact_lock(hashtext('taskguard.task_debounce'),
                                  hashtext(concat_ws('/', coalesce(p_tenant, ''), p_task_name,
                                                     p_debounce_key)));
    UPDATE taskguard.task t
       SET args = p_args,
           run_at = CASE WHEN p_debounce_max IS NULL THEN p_run_at
                         ELSE least(p_run_at, t.enqueued_at + p_debounce_max) END
     WHERE coalesce(t.tenant, '') = coalesce(p_tenant, '') AND t.task_name = p_task_name
       AND t.debounce_key = p_debounce_key AND t.status = 'ready'
    RETURNING t.id INTO v_id;
    IF v_id IS NULL THEN
        INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
            max_attempts, tenant, customer_tier, service, idempotency_key, flow_key, debounce_key)
        VALUES (p_queue, p_task_name, p_args, p_priority, p_score,
                CASE WHEN p_debounce_max IS NULL THEN p_run_at
                     ELSE least(p_run_at, now() + p_debounce_max) END,
                p_max_attempts, p_tenant, p_tier, p_service, p_idempotency_key, p_flow_key,
                p_debounce_key)
        RETURNING t.id INTO v_id;
    END IF;
    RETURN v_id;
END
$$;

-- Check flow_key and the debounce arguments of enqueue().
CREATE FUNCTION taskguard._check_flow_args(flow_key text, debounce_key text, debounce interval,
    debounce_max interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF flow_key = '' OR length(flow_key) > 200 THEN
        RAISE EXCEPTION 'flow_key must be 1 to 200 characters, got %', length(flow_key)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF debounce_key = '' OR length(debounce_key) > 200 THEN
        RAISE EXCEPTION 'debounce_key must be 1 to 200 characters, got %', length(debounce_key)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF debounce_key IS NULL AND (debounce IS NOT NULL OR debounce_max IS NOT NULL) THEN
        RAISE EXCEPTION 'debounce and debounce_max need a debounce_key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF debounce < interval '0' OR debounce > interval '1 year' THEN
        RAISE EXCEPTION 'debounce must be an interval of 0 to 1 year, got %', debounce
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF debounce_max <= interval '0' OR debounce_max > interval '1 year' THEN
        RAISE EXCEPTION 'debounce_max must be a positive interval of at most 1 year, got %', debounce_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- ---------------------------------------------------------------- dashboards

-- Per limit and value ('*': each value with ready or running tasks): running
-- against the cap, tokens left, tasks waiting (ready and due), and whether
-- the limit holds them back now (at its cap or out of tokens) since when.
-- Counted from the table, as the caller sees it (row security applies).
CREATE VIEW taskguard.flow_status AS
WITH v AS (
    SELECT l.scope, l.name, x.value,
           count(*) FILTER (WHERE x.status = 'running') AS running,
           count(*) FILTER (WHERE x.status = 'ready' AND x.run_at <= now()) AS waiting,
           min(x.run_at) FILTER (WHERE x.status = 'ready' AND x.run_at <= now()) AS oldest_due
      FROM taskguard.flow_limit l
      JOIN LATERAL (
          SELECT CASE l.scope WHEN 'queue' THEN t.queue WHEN 'task_name' THEN t.task_name
                              WHEN 'service' THEN t.service WHEN 'tenant' THEN t.tenant
                              ELSE t.flow_key END AS value, t.status, t.run_at
            FROM taskguard.task t WHERE t.status IN ('ready', 'running')) x
        ON x.value = l.name OR (l.name = '*' AND x.value IS NOT NULL)
     GROUP BY l.scope, l.name, x.value),
s AS (
    SELECT l.scope, l.name, coalesce(v.value, nullif(l.name, '*')) AS value, l.max_running,
           coalesce(v.running, 0) AS running, l.rate, l.per, coalesce(l.burst, l.rate) AS burst,
           CASE WHEN l.rate IS NOT NULL AND coalesce(v.value, nullif(l.name, '*')) IS NOT NULL
                THEN taskguard._flow_tokens(l.scope, l.name, coalesce(v.value, l.name)) END AS tokens,
           coalesce(v.waiting, 0) AS waiting, v.oldest_due, l.weight
      FROM taskguard.flow_limit l LEFT JOIN v ON v.scope = l.scope AND v.name = l.name)
SELECT s.scope, s.name, s.value, s.max_running, s.running, s.rate, s.per, s.burst,
       round(s.tokens::numeric, 2) AS tokens, s.waiting,
       s.waiting > 0 AND (coalesce(s.running >= s.max_running, false) OR coalesce(s.tokens < 1, false))
           AS held_back,
       CASE WHEN s.waiting > 0 AND (coalesce(s.running >= s.max_running, false)
                                    OR coalesce(s.tokens < 1, false))
            THEN s.oldest_due END AS waiting_since,
       s.weight
  FROM s;

-- Paused queues and task types, with the ready tasks they keep waiting.
CREATE VIEW taskguard.flow_paused AS
SELECT p.queue, nullif(p.task_name, '*') AS task_name, p.paused_at, p.paused_by,
       (SELECT count(*) FROM taskguard.task t
         WHERE t.queue = p.queue AND t.status = 'ready'
           AND (p.task_name = '*' OR t.task_name = p.task_name)) AS waiting
  FROM taskguard.flow_pause p;

-- The flow families of prometheus_metrics() (84_prometheus.sql), one sample
-- per limit and value (NaN where a limit has no cap or no rate), and one per
-- pause.  dashboards/postgres_exporter/queries.yaml publishes the same.
-- PL/pgSQL: the _prom_ helpers come later in the install script.
CREATE FUNCTION taskguard._prom_flow()
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
DECLARE
    v_out text := '';
    v_fam record;
BEGIN
    FOR v_fam IN
        SELECT * FROM (VALUES
            ('running', 'Tasks running, per flow limit and value.'),
            ('max_running', 'The cap of the flow limit (NaN: no cap).'),
            ('tokens', 'Tokens left in the flow limit''s bucket for the value (NaN: no rate).'),
            ('waiting', 'Ready and due tasks the flow limit applies to.')) f (col, help)
    LOOP
        v_out := v_out || taskguard._prom_family('taskguard_flow_' || v_fam.col, 'gauge', v_fam.help,
            (SELECT string_agg(format(E'taskguard_flow_%s{scope=%s,name=%s,value=%s} %s\n', v_fam.col,
                                      taskguard._prom_label(s.scope), taskguard._prom_label(s.name),
                                      taskguard._prom_label(s.value),
                                      taskguard._prom_value(CASE v_fam.col
                                          WHEN 'running' THEN s.running::numeric
                                          WHEN 'max_running' THEN s.max_running::numeric
                                          WHEN 'tokens' THEN s.tokens
                                          ELSE s.waiting::numeric END)),
                               '' ORDER BY s.scope, s.name, s.value)
               FROM taskguard.flow_status s));
    END LOOP;
    RETURN v_out || taskguard._prom_family('taskguard_flow_queue_paused', 'gauge',
        'Paused queues (task_name "") and task types (1).',
        (SELECT string_agg(format(E'taskguard_flow_queue_paused{queue=%s,task_name=%s} 1\n',
                                  taskguard._prom_label(p.queue), taskguard._prom_label(p.task_name)),
                           '' ORDER BY p.queue, p.task_name)
           FROM taskguard.flow_paused p));
END
$$;
