#!/usr/bin/env bash
# The scheduler runs its steps as the bootstrap superuser (issue 16, classes
# 1 and 5), on its own cluster:
# - the database owner (not a superuser, CREATE on public) plants public
#   look-alikes of every pg_catalog function the extension's SQL calls (same
#   argument types, so they win over polymorphic originals whatever the path),
#   aggregates (array_agg(bigint), count(*), ...), operators and domains named
#   like the types casts use, and sets the database's search_path to public
#   first.  Every look-alike records current_user and, run as a superuser,
#   makes its owner one.  Several passes with work later: nothing ran, no role
#   gained rolsuper, the work was done.
# - a step that waits on a lock (a session holds ACCESS EXCLUSIVE on the one
#   table expire_keys needs) is cancelled by taskguard.step_lock_timeout, then
#   by taskguard.step_timeout; passes go on and the other steps do their work;
#   the failure is logged once, not every pass.
. "$(dirname "$0")/../lib/tap.sh"

dir=$TG_WORK/sched_security
port=$(tg_pick_port)
tg_init_cluster "$dir" "$port" "taskguard.database = 'jobs'" "taskguard.naptime = 100" \
    "cron.database_name = 'postgres'" "taskguard.task_retention = '1 second'" \
    "taskguard.idempotency_ttl = '1 second'"
tg_start
trap 'tg_stop immediate' EXIT
DB=jobs
# the test's own sessions never resolve through public
export PGOPTIONS="-c search_path=pg_catalog,taskguard"

psql -X -q -d postgres -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE ROLE tg_owner LOGIN;
CREATE DATABASE jobs OWNER tg_owner;
SQL
psql -X -q -d jobs -v ON_ERROR_STOP=1 -c "CREATE EXTENSION taskguard" >/dev/null
ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "scheduler runs in jobs"

# --- the database owner plants its traps -----------------------------------
planted=$(psql -X -At -q -U tg_owner -d jobs -v ON_ERROR_STOP=1 <<'SQL'
SET search_path = pg_catalog;
CREATE TABLE public.trap_log (what text, who name, backend text, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT ALL ON public.trap_log TO PUBLIC;
-- records who ran it; run by a superuser it makes tg_owner one
CREATE FUNCTION public.tg_trap(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.trap_log (what, who, backend)
    SELECT what, current_user, a.backend_type FROM pg_catalog.pg_stat_activity a
     WHERE a.pid = pg_catalog.pg_backend_pid();
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE tg_owner SUPERUSER';
    END IF;
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN true;
END
$f$;

-- a look-alike for every non-polymorphic pg_catalog function the extension's
-- SQL names: public.f(same args) logs, then calls pg_catalog.f
DO $d$
DECLARE
    p record;
    n int := 0;
BEGIN
    FOR p IN
        SELECT f.proname, pg_catalog.pg_get_function_identity_arguments(f.oid) AS args,
               pg_catalog.format_type(f.prorettype, NULL) AS ret, f.pronargs,
               (SELECT pg_catalog.string_agg('$' || i, ', ') FROM pg_catalog.generate_series(1, f.pronargs) i) AS call
          FROM pg_catalog.pg_proc f
         WHERE f.pronamespace = 'pg_catalog'::regnamespace AND f.prokind = 'f' AND NOT f.proretset
           AND f.provariadic = 0
           AND f.proname IN (SELECT DISTINCT pg_catalog.lower(m[1])
                               FROM pg_catalog.pg_proc e,
                                    pg_catalog.regexp_matches(e.prosrc, '([A-Za-z_][A-Za-z_0-9]*)\s*\(', 'g') m
                              WHERE e.pronamespace = 'taskguard'::regnamespace)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(f.proargtypes::oid[] || f.prorettype) t(o)
                            JOIN pg_catalog.pg_type ty ON ty.oid = t.o WHERE ty.typtype = 'p')
    LOOP
        BEGIN
            EXECUTE pg_catalog.format(
                'CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.tg_trap(%L); RETURN pg_catalog.%I(%s); END $b$',
                p.proname, p.args, p.ret, 'function ' || p.proname || '(' || p.args || ')', p.proname,
                coalesce(p.call, ''));
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            NULL;   -- e.g. an argument type this role may not name
        END;
    END LOOP;
    RAISE NOTICE 'planted % functions', n;
END
$d$;

-- exact-type look-alikes of polymorphic functions and aggregates
CREATE FUNCTION public.trap_sfunc_int8(bigint[], bigint) RETURNS bigint[] LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('aggregate (bigint)'); RETURN pg_catalog.array_append($1, $2); END $f$;
CREATE FUNCTION public.trap_sfunc_text(text[], text) RETURNS text[] LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('aggregate (text)'); RETURN pg_catalog.array_append($1, $2); END $f$;
CREATE FUNCTION public.trap_count(bigint) RETURNS bigint LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('aggregate count(*)'); RETURN $1 + 1; END $f$;
CREATE AGGREGATE public.array_agg(bigint) (sfunc = public.trap_sfunc_int8, stype = bigint[]);
CREATE AGGREGATE public.array_agg(text) (sfunc = public.trap_sfunc_text, stype = text[]);
CREATE AGGREGATE public.count(*) (sfunc = public.trap_count, stype = bigint, initcond = '0');
CREATE FUNCTION public.unnest(bigint[]) RETURNS SETOF bigint LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('unnest(bigint[])'); RETURN QUERY SELECT * FROM pg_catalog.unnest($1); END $f$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('unnest(text[])'); RETURN QUERY SELECT * FROM pg_catalog.unnest($1); END $f$;
CREATE FUNCTION public.array_length(bigint[], integer) RETURNS integer LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('array_length(bigint[])'); RETURN pg_catalog.array_length($1, $2); END $f$;
CREATE FUNCTION public.cardinality(bigint[]) RETURNS integer LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('cardinality(bigint[])'); RETURN pg_catalog.cardinality($1); END $f$;

-- operators
CREATE FUNCTION public.trap_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator =(text,text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE FUNCTION public.trap_eq_int8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator =(bigint,bigint)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE FUNCTION public.trap_le_ts(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator <=(timestamptz,timestamptz)'); RETURN $1 OPERATOR(pg_catalog.<=) $2; END $f$;
CREATE FUNCTION public.trap_lt_ts(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator <(timestamptz,timestamptz)'); RETURN $1 OPERATOR(pg_catalog.<) $2; END $f$;
CREATE FUNCTION public.trap_plus_ts(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator +(timestamptz,interval)'); RETURN $1 OPERATOR(pg_catalog.+) $2; END $f$;
CREATE FUNCTION public.trap_minus_ts(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.tg_trap('operator -(timestamptz,interval)'); RETURN $1 OPERATOR(pg_catalog.-) $2; END $f$;
CREATE OPERATOR public.= (leftarg = text, rightarg = text, function = public.trap_eq_text);
CREATE OPERATOR public.= (leftarg = bigint, rightarg = bigint, function = public.trap_eq_int8);
CREATE OPERATOR public.<= (leftarg = timestamptz, rightarg = timestamptz, function = public.trap_le_ts);
CREATE OPERATOR public.< (leftarg = timestamptz, rightarg = timestamptz, function = public.trap_lt_ts);
CREATE OPERATOR public.+ (leftarg = timestamptz, rightarg = interval, function = public.trap_plus_ts);
CREATE OPERATOR public.- (leftarg = timestamptz, rightarg = interval, function = public.trap_minus_ts);

-- types: domains named like the types casts name (::text, ::int4, ...)
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.tg_trap('domain text'));
CREATE DOMAIN public.int4 AS pg_catalog.int4 CHECK (public.tg_trap('domain int4'));
CREATE DOMAIN public.int8 AS pg_catalog.int8 CHECK (public.tg_trap('domain int8'));
CREATE DOMAIN public.float8 AS pg_catalog.float8 CHECK (public.tg_trap('domain float8'));
CREATE DOMAIN public.jsonb AS pg_catalog.jsonb CHECK (public.tg_trap('domain jsonb'));
CREATE DOMAIN public.timestamptz AS pg_catalog.timestamptz CHECK (public.tg_trap('domain timestamptz'));
CREATE DOMAIN public.bool AS pg_catalog.bool CHECK (public.tg_trap('domain bool'));
CREATE DOMAIN public.name AS pg_catalog.name CHECK (public.tg_trap('domain name'));
CREATE DOMAIN public.regclass AS pg_catalog.regclass CHECK (public.tg_trap('domain regclass'));

-- and every new session of this database resolves through public first
ALTER DATABASE jobs SET search_path = public, pg_catalog, taskguard;
SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc WHERE pronamespace = 'public'::regnamespace;
SQL
)
ok "$([ "${planted:-0}" -ge 40 ] && echo 0 || echo 1)" "the database owner planted $planted look-alike functions in public"
is "$(psql -X -At -d jobs -c "SELECT count(*) FROM public.trap_log")" 0 "no trap ran while planting"
# a trap works: a session that does resolve through public runs it
PGOPTIONS= psql -X -At -U tg_owner -d jobs -c "SELECT 1 WHERE 'a'::text = 'a'" >/dev/null
is "$(q "SELECT count(*) > 0 FROM public.trap_log WHERE who = 'tg_owner'")" t "the traps fire in a session whose search_path has public"
q "TRUNCATE public.trap_log" >/dev/null

# the scheduler reconnects (a crash, a restart): it gets the database's settings
old=$(q "SELECT pid FROM taskguard.scheduler_status")
q "SELECT pg_terminate_backend($old)" >/dev/null
ok "$(tg_wait_for 15 "SELECT pid IS NOT NULL AND pid <> $old AND passes > 0 FROM taskguard.scheduler_status"; echo $?)" \
   "the scheduler is back after a restart"
is "$(q "SELECT setting FROM pg_settings WHERE name = 'taskguard.step_timeout'")" 60000 "taskguard.step_timeout defaults to 60 s"

# --- work for every kind of step --------------------------------------------
q "INSERT INTO taskguard.breaker_config (service, failure_threshold, \"window\", cooldown, half_open_max_calls, success_threshold)
   VALUES ('svc', 2, '30 seconds', '1 second', 1, 1)" >/dev/null
work() {
    q "SELECT taskguard.enqueue('t', '{}', queue => 'sec', idempotency_key => 'k-' || g) FROM generate_series(1, 20) g" >/dev/null
    q "SELECT taskguard.complete(id) FROM taskguard.claim('sec', 'w', 5)" >/dev/null
    q "SELECT taskguard.fail(id, 'psycopg.OperationalError', 'server closed the connection') FROM taskguard.claim('sec', 'w', 5)" >/dev/null
    q "SELECT count(*) FROM taskguard.claim('sec', 'w-gone', 5, '1 second')" >/dev/null
    q "SELECT taskguard.breaker_record('svc', false) FROM generate_series(1, 2)" >/dev/null
}
counts="SELECT (total_counts->>'requeue_retries')::int, (total_counts->>'reap_leases')::int,
               (total_counts->>'prune_tasks')::int, (total_counts->>'expire_keys')::int
          FROM taskguard.scheduler_status"
work
ok "$(tg_wait_for 30 "SELECT (total_counts->>'requeue_retries')::int > 0 AND (total_counts->>'reap_leases')::int > 0
                        AND (total_counts->>'prune_tasks')::int > 0 AND (total_counts->>'expire_keys')::int > 0
                        AND passes > 20 FROM taskguard.scheduler_status"; echo $?)" \
   "the scheduler requeued retries, reaped leases, pruned tasks and expired keys"
echo "# scheduler work: $(q "SELECT total_counts FROM taskguard.scheduler_status")"
is "$(q "SELECT count(*) FROM public.trap_log")" 0 "no planted look-alike ran (trap_log empty)"
q "SELECT what, who, backend FROM public.trap_log GROUP BY 1, 2, 3 LIMIT 10" | sed 's/^/#   /'
is "$(q "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolsuper AND rolname <> 'postgres'")" "" \
   "no role gained rolsuper"
is "$(q "SELECT current_setting('search_path')" )" "pg_catalog,taskguard" "(the test's own sessions are pinned)"

# --- a step that waits on a lock does not stop the others --------------------
q "ALTER SYSTEM SET taskguard.step_lock_timeout = '200ms'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
psql -X -q -d jobs -c "BEGIN" -c "LOCK TABLE taskguard.idempotency_record IN ACCESS EXCLUSIVE MODE" \
     -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
locker=$!
ok "$(tg_wait_for 10 "SELECT count(*) = 1 FROM pg_locks WHERE relation = 'taskguard.idempotency_record'::regclass AND mode = 'AccessExclusiveLock' AND granted"; echo $?)" \
   "a session holds ACCESS EXCLUSIVE on idempotency_record"
read -r r0 l0 p0 e0 <<<"$(q "$counts" | tr '|' ' ')"
passes0=$(q "SELECT passes FROM taskguard.scheduler_status")
q "SELECT taskguard.fail(id, 'psycopg.OperationalError', 'server closed the connection') FROM taskguard.claim('sec', 'w', 5)" >/dev/null
q "SELECT count(*) FROM taskguard.claim('sec', 'w-gone', 5, '1 second')" >/dev/null
ok "$(tg_wait_for 30 "SELECT (total_counts->>'requeue_retries')::int > $r0 AND (total_counts->>'reap_leases')::int > $l0
                        AND passes > $passes0 + 10 FROM taskguard.scheduler_status"; echo $?)" \
   "while expire_keys waits on the lock, passes go on and retries and leases are handled"
ok "$(tg_wait_for 5 "SELECT last_error LIKE 'expire_keys: canceling statement due to lock timeout%' FROM taskguard.scheduler_status"; echo $?)" \
   "expire_keys is cancelled by taskguard.step_lock_timeout"
n_lock=$(grep -c 'step "expire_keys" failed: canceling statement due to lock timeout' "$TG_LOGFILE")
is "$n_lock" 1 "the lock timeout is logged once, not every pass"

# the statement timeout covers a lock wait when lock_timeout is off
q "ALTER SYSTEM SET taskguard.step_lock_timeout = 0" >/dev/null
q "ALTER SYSTEM SET taskguard.step_timeout = '300ms'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
passes1=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$(tg_wait_for 15 "SELECT last_error LIKE 'expire_keys: canceling statement due to statement timeout%' AND passes > $passes1 + 5
                        FROM taskguard.scheduler_status"; echo $?)" \
   "with no lock timeout, taskguard.step_timeout cancels the waiting step and passes go on"
kill "$locker" 2>/dev/null; wait "$locker" 2>/dev/null
q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = 'taskguard.idempotency_record'::regclass AND granted AND pid <> pg_backend_pid()" >/dev/null
q "SELECT taskguard.enqueue('t', '{}', queue => 'sec', idempotency_key => 'after-lock')" >/dev/null
ok "$(tg_wait_for 15 "SELECT NOT EXISTS (SELECT 1 FROM taskguard.idempotency_record WHERE key = 'after-lock')"; echo $?)" \
   "once the lock is gone expire_keys works again"
is "$(q "SELECT count(*) FROM public.trap_log")" 0 "still no planted look-alike ran"
is "$(grep -E 'FATAL|PANIC|terminated by signal' "$TG_LOGFILE" | grep -vc 'due to administrator command')" 0 \
   "no FATAL or crash in the log (bar the terminations above)"
done_testing
