-- 40_breaker.sql — circuit breakers (SPEC §6).  Placeholder: the breaker
-- capability replaces this file.

-- claim(): is this service's breaker open (no side effects)?
CREATE FUNCTION taskguard._breaker_is_open(service text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT false $$;

-- complete()/fail(): record the outcome of a task of this service.
CREATE FUNCTION taskguard._breaker_task_done(service text, success boolean)
RETURNS void
LANGUAGE sql VOLATILE
AS $$ SELECT $$;

-- Scheduler step: half-open cooled breakers and persist their state.
CREATE FUNCTION taskguard._breaker_maintain()
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;
