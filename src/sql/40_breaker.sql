-- 40_breaker.sql — circuit breakers (docs/reference.md#breakers).  State lives in shared memory
-- (src/breaker.c); this file holds the settings, the saved state, the public
-- functions, the status view and the hooks the queue and the scheduler call.

-- Settings per service; '*' is the default row.  In other rows a NULL column
-- takes the '*' value (and without a '*' row, the built-in defaults below).
CREATE TABLE taskguard.breaker_config (
    service             text PRIMARY KEY
                        CHECK (octet_length(service) BETWEEN 1 AND 200),
    failure_threshold   int CHECK (failure_threshold BETWEEN 1 AND 1000000),
    "window"            interval CHECK ("window" > interval '0' AND "window" <= interval '1 year'),
    cooldown            interval CHECK (cooldown >= interval '0' AND cooldown <= interval '1 year'),
    half_open_max_calls int CHECK (half_open_max_calls BETWEEN 1 AND 1000000),
    success_threshold   int CHECK (success_threshold BETWEEN 1 AND 1000000),
    CONSTRAINT breaker_config_default_complete CHECK (service <> '*' OR (
        failure_threshold IS NOT NULL AND "window" IS NOT NULL AND cooldown IS NOT NULL
        AND half_open_max_calls IS NOT NULL AND success_threshold IS NOT NULL))
);
INSERT INTO taskguard.breaker_config
VALUES ('*', 5, interval '60 seconds', interval '30 seconds', 3, 2);
SELECT pg_catalog.pg_extension_config_dump('taskguard.breaker_config', '');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.breaker_config
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('service');

-- Every backend re-reads breaker_config after a change commits.
CREATE TRIGGER breaker_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.breaker_config
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

-- The resolved settings of every row (C reads this; microseconds).
CREATE FUNCTION taskguard._breaker_config_rows()
RETURNS TABLE (service text, failure_threshold int, window_us bigint, cooldown_us bigint,
               half_open_max_calls int, success_threshold int)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT c.service,
       coalesce(c.failure_threshold, d.failure_threshold, 5),
       (extract(epoch FROM coalesce(c."window", d."window", interval '60 seconds')) * 1000000)::bigint,
       (extract(epoch FROM coalesce(c.cooldown, d.cooldown, interval '30 seconds')) * 1000000)::bigint,
       coalesce(c.half_open_max_calls, d.half_open_max_calls, 3),
       coalesce(c.success_threshold, d.success_threshold, 2)
  FROM taskguard.breaker_config c
  LEFT JOIN taskguard.breaker_config d ON d.service = '*'
$$;

-- The cooldown of a service (for saved rows that are not live).
CREATE FUNCTION taskguard._breaker_cooldown(service text)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce((SELECT c.cooldown FROM taskguard.breaker_config c WHERE c.service = $1),
                (SELECT c.cooldown FROM taskguard.breaker_config c WHERE c.service = '*'),
                interval '30 seconds')
$$;

-- Saved breaker state, so that a restart keeps open breakers open.  Written on
-- every state change (best effort) and by the scheduler; read into shared
-- memory on first use in this database after a start.  version orders writes.
CREATE TABLE taskguard.breaker_saved (
    service      text PRIMARY KEY,
    state        taskguard.breaker_state NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('auto', 'open', 'disabled')),
    failures     int NOT NULL DEFAULT 0,
    successes    int NOT NULL DEFAULT 0,
    window_start timestamptz,
    window_us    bigint NOT NULL DEFAULT 0,
    opened_at    timestamptz,
    changed_at   timestamptz,
    version      bigint NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.breaker_saved', '');

-- Rows worth loading (not closed-and-automatic), open ones first.
CREATE FUNCTION taskguard._breaker_saved_rows()
RETURNS SETOF taskguard.breaker_saved
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT * FROM taskguard.breaker_saved s
 WHERE s.state <> 'closed' OR s.mode <> 'auto'
 ORDER BY s.state = 'open' DESC, s.changed_at DESC NULLS LAST
$$;

CREATE FUNCTION taskguard._breaker_saved_max_version()
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(s.version), 0) FROM taskguard.breaker_saved s $$;

-- Write one breaker's state unless a newer version is there.  Never waits for
-- a row another transaction holds (returns false: the scheduler retries).  A
-- clean closed breaker without a row needs none.
CREATE FUNCTION taskguard._breaker_save(p_service text, p_state text, p_mode text,
    p_failures int, p_successes int, p_window_start timestamptz, p_window_us bigint,
    p_opened_at timestamptz, p_changed_at timestamptz, p_version bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM taskguard.breaker_saved s WHERE s.service = p_service FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE taskguard.breaker_saved s
           SET state = p_state::taskguard.breaker_state, mode = p_mode, failures = p_failures,
               successes = p_successes, window_start = p_window_start,
               window_us = p_window_us, opened_at = p_opened_at, changed_at = p_changed_at,
               version = p_version
         WHERE s.service = p_service AND s.version < p_version;
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM taskguard.breaker_saved s WHERE s.service = p_service) THEN
        RETURN false;
    END IF;
    IF p_state = 'closed' AND p_mode = 'auto' AND p_failures = 0 THEN
        RETURN true;
    END IF;
    INSERT INTO taskguard.breaker_saved AS s (service, state, mode, failures, successes,
        window_start, window_us, opened_at, changed_at, version)
    VALUES (p_service, p_state::taskguard.breaker_state, p_mode, p_failures, p_successes,
            p_window_start, p_window_us, p_opened_at, p_changed_at, p_version)
    ON CONFLICT (service) DO NOTHING;
    RETURN FOUND;
END
$$;

-- Public API (docs/reference.md#breakers).  These need shared_preload_libraries.
CREATE FUNCTION taskguard.breaker_allow(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_allow'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_record(service text, success boolean)
RETURNS taskguard.breaker_state
AS 'MODULE_PATHNAME', 'taskguard_breaker_record'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_reset(service text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_force(service text, mode text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_force'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The live breakers of this database (no rows when not preloaded).
CREATE FUNCTION taskguard._breaker_live(
    OUT service text, OUT state text, OUT mode text, OUT failures int, OUT successes int,
    OUT opened_at timestamptz, OUT next_probe_at timestamptz, OUT changed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_breaker_live'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 100;

-- The cluster-wide breaker table: its size, slots in use, what one tenant
-- may hold, and allocations refused since the server started (a refused
-- allocation is a failure not counted).  No row when not preloaded.
CREATE FUNCTION taskguard._breaker_table(
    OUT capacity int, OUT in_use int, OUT tenant_limit int, OUT refused_full bigint,
    OUT refused_share bigint, OUT last_refused_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_breaker_table'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;

-- Live values where there are any, saved rows otherwise.
CREATE VIEW taskguard.breaker_status AS
SELECT coalesce(l.service, s.service) AS service,
       coalesce(l.state::taskguard.breaker_state, s.state) AS state,
       coalesce(l.mode, s.mode) AS mode,
       CASE WHEN l.service IS NOT NULL THEN l.failures
            WHEN s.state = 'closed' AND (s.window_start IS NULL OR
                 s.window_start + s.window_us * interval '1 microsecond' <= now()) THEN 0
            ELSE s.failures END AS failures,
       CASE WHEN l.service IS NOT NULL THEN l.successes ELSE s.successes END AS successes,
       CASE WHEN l.service IS NOT NULL THEN l.opened_at ELSE s.opened_at END AS opened_at,
       CASE WHEN l.service IS NOT NULL THEN l.next_probe_at
            WHEN s.state = 'open' AND s.mode = 'auto'
            THEN s.opened_at + taskguard._breaker_cooldown(s.service) END AS next_probe_at,
       CASE WHEN l.service IS NOT NULL THEN l.changed_at ELSE s.changed_at END AS changed_at
  FROM taskguard._breaker_live() l
  FULL JOIN taskguard.breaker_saved s ON s.service = l.service;

-- Hooks.  Without preloading they answer "no breaker" so the queue works.

-- claim(): would a call to this service be refused now?  No side effects.
CREATE FUNCTION taskguard._breaker_is_open(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_is_open'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- claim(): a task of this service is handed out; takes a half-open probe.
-- False: the breaker has no probe left, do not hand the task out.
CREATE FUNCTION taskguard._breaker_claimed(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_claimed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- complete()/fail(): record the outcome of a task of this service.  Never
-- raises because the breaker table is full.
CREATE FUNCTION taskguard._breaker_task_done(service text, success boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_task_done'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Scheduler step: half-open cooled breakers and save unsaved state.
CREATE FUNCTION taskguard._breaker_maintain()
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_breaker_maintain'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
