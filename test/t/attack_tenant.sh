#!/usr/bin/env bash
# Attack suite, issue 16 classes 1, 2, 3, 4 (grants) and 7, tried as hostile
# roles would (docs/security.md, "Threat model").  Each attack asserts the
# refusal, and at the end no attacker is a superuser and no tenant's rows
# moved.  Runs in the harness's cluster, in a database of its own.
. "$(dirname "$0")/../lib/tap.sh"

DB=attack
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack" -c "CREATE DATABASE attack" >/dev/null
roles="att_reader att_worker att_bolt att_grp acme_login att_owner"
cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack" >/dev/null 2>&1
    for r in $roles; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
}
trap cleanup EXIT
for r in $roles; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
q "CREATE EXTENSION taskguard" >/dev/null
q "CREATE ROLE att_reader; CREATE ROLE att_worker; CREATE ROLE att_bolt; CREATE ROLE att_grp;
   CREATE ROLE acme_login LOGIN IN ROLE att_grp; CREATE ROLE att_owner;
   SELECT taskguard.grant_access('att_reader', 'reader'), taskguard.grant_access('att_worker', 'worker'),
          taskguard.grant_access('att_bolt', 'worker'), taskguard.grant_access('att_grp', 'worker'),
          taskguard.grant_access('acme_login', 'worker');
   INSERT INTO taskguard.tenant_member VALUES ('att_worker', 'acme'), ('att_bolt', 'bolt'),
                                              ('acme_login', 'acme');
   -- what planted objects write when they run: nothing must ever arrive here
   CREATE TABLE public.captured (who text, what text);
   GRANT INSERT, SELECT ON public.captured TO PUBLIC;
   CREATE SCHEMA evil AUTHORIZATION att_reader;
   GRANT USAGE ON SCHEMA evil TO PUBLIC;" >/dev/null
acme=$(q "SELECT taskguard.enqueue('job', '{\"t\": \"acme\"}', queue => 'q', tenant => 'acme')")
bolt=$(q "SELECT taskguard.enqueue('job', '{\"t\": \"bolt\"}', queue => 'q', tenant => 'bolt')")
q "SELECT taskguard.enqueue('job', '{\"t\": \"none\"}', queue => 'q')" >/dev/null
fingerprint="SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM taskguard.task t"
before=$(q "$fingerprint")

errstate() {  # psql output → the SQLSTATE of an error, else the last result line
    awk '/^ERROR:  [0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z]:/ { code = substr($2, 1, 5) }
         /^(LOCATION|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|NOTICE|WARNING|ERROR):/ { skip = 1; next }
         /^SET$/ { next }
         { if (!skip) last = $0 }
         END { print (code != "" ? code : last) }'
}
as() {  # as ROLE SQL: run SQL as ROLE (session user stays postgres)
    psql -X -At -d attack -v ON_ERROR_STOP=1 -c "\set VERBOSITY verbose" -c "SET ROLE $1" -c "$2" 2>&1 | errstate
}
login() {  # login LOGIN SQL: a session of LOGIN itself (trust authentication in the test cluster)
    psql -X -At -d attack -U "$1" -v ON_ERROR_STOP=1 -c "\set VERBOSITY verbose" -c "$2" 2>&1 | errstate
}

# ---------------------------------------------------------------- class 1
# Look-alikes for every name the owner-rights code uses, in a schema the
# attacker puts first and in pg_temp: types, a domain with a CHECK, operators,
# functions, an aggregate.  Their bodies record who ran them.
plant="
CREATE FUNCTION evil.snitch() RETURNS boolean LANGUAGE plpgsql AS
  \$f\$ DECLARE c pg_catalog.text; BEGIN GET DIAGNOSTICS c = PG_CONTEXT;
  INSERT INTO public.captured VALUES (current_user, c); RETURN true; END \$f\$;
CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE sql AS \$f\$ SELECT CASE WHEN evil.snitch() THEN \$1 END \$f\$;
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS \$f\$ SELECT CASE WHEN evil.snitch() THEN \$1 END \$f\$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS \$f\$ SELECT CASE WHEN evil.snitch() THEN pg_catalog.now() END \$f\$;
CREATE FUNCTION evil.coalesce_(text, text) RETURNS text LANGUAGE sql AS \$f\$ SELECT \$1 \$f\$;
CREATE FUNCTION evil.eq(name, name) RETURNS boolean LANGUAGE sql AS \$f\$ SELECT evil.snitch() AND \$1::text = \$2::text \$f\$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.eq);
CREATE FUNCTION evil.teq(text, text) RETURNS boolean LANGUAGE sql AS \$f\$ SELECT evil.snitch() AND pg_catalog.texteq(\$1, \$2) \$f\$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.teq);
CREATE FUNCTION evil.acc(bigint[], bigint) RETURNS bigint[] LANGUAGE sql AS \$f\$ SELECT CASE WHEN evil.snitch() THEN \$1 || \$2 END \$f\$;
CREATE AGGREGATE evil.array_agg(bigint) (SFUNC = evil.acc, STYPE = bigint[]);
CREATE FUNCTION evil.pos(float8) RETURNS boolean LANGUAGE sql AS \$f\$ SELECT evil.snitch() \$f\$;
CREATE DOMAIN evil.float8 AS pg_catalog.float8 CHECK (evil.pos(VALUE));
CREATE DOMAIN evil.int4 AS pg_catalog.int4 CHECK (evil.pos(VALUE::pg_catalog.float8));
CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.pos(1));
CREATE FUNCTION pg_temp.upper(text) RETURNS text LANGUAGE sql AS \$f\$ SELECT CASE WHEN evil.snitch() THEN \$1 END \$f\$;
CREATE DOMAIN pg_temp.float8 AS pg_catalog.float8 CHECK (evil.pos(VALUE));
CREATE DOMAIN pg_temp.real AS pg_catalog.float4 CHECK (evil.pos(VALUE));
"
calls="
SET search_path = pg_temp, evil, pg_catalog, public;
SELECT taskguard.classify('x', 'y');
SELECT taskguard.classify('requests.ConnectionError', 'connection refused', '{\"http_status\": 503, \"sqlstate\": \"08006\"}');
SELECT count(*) FROM taskguard.task;
SELECT count(*) FROM taskguard.dlq;
SELECT * FROM taskguard.dashboard;
SELECT taskguard.prometheus_metrics() IS NOT NULL;
SELECT taskguard.calculate_priority('job', '{\"customer_tier\": \"premium\"}');
SELECT taskguard.retry_decision('TRANSIENT_NETWORK', 1, 'job');
"
worker_calls="
SET search_path = pg_temp, evil, pg_catalog, public;
SELECT taskguard.enqueue('job2', queue => 'q2');
SELECT count(*) FROM taskguard.claim('q2', 'w');
SELECT taskguard.fail(id, 'TimeoutError', 'timed out') FROM taskguard.task WHERE queue = 'q2';
SELECT taskguard.idempotency_check('k1', '1 hour', 'job');
SELECT taskguard.idempotency_release('k1');
SELECT taskguard.breaker_allow('svc'), taskguard.breaker_record('svc', false);
SELECT taskguard.record_failure('ext', '{}', 'ValueError', 'bad', task_ref => 'r1');
SELECT count(*) FROM taskguard.claim_due_retries(10);
"
psql -X -q -d attack -c "SET ROLE att_reader" -c "$plant" >/dev/null 2>&1
ok $? "the reader plants look-alikes in its schema"
psql -X -q -d attack -c "GRANT USAGE ON SCHEMA evil TO att_worker" >/dev/null
out=$(psql -X -q -d attack -c "SET ROLE att_reader" -c "$plant" -c "$calls" 2>&1)
# the attacker's own statements may use its objects as itself; what must never
# happen is one running as anybody else (the owner, the scheduler)
elevated="SELECT count(*) FROM public.captured WHERE who NOT IN ('att_reader', 'att_worker')"
is "$(q "$elevated")" "0" "no planted object ran with more rights in the reader's calls"
out=$(psql -X -q -d attack -c "SET ROLE att_worker" \
      -c "SET search_path = pg_temp, evil, pg_catalog" \
      -c "$(echo "$plant" | grep 'pg_temp')" -c "$worker_calls" -c "$calls" 2>&1)
is "$(q "$elevated")" "0" "no planted object ran with more rights in the worker's calls"
q "SELECT who || ': ' || what FROM public.captured WHERE who NOT IN ('att_reader', 'att_worker')" | sed 's/^/# captured /'
is "$(q "SELECT string_agg(DISTINCT who, ',') FROM public.captured WHERE who NOT IN ('att_reader', 'att_worker')")" "" \
   "nobody ran them as the owner"
# the planted objects do work when called on purpose (the test would catch a capture)
q "TRUNCATE public.captured" >/dev/null
psql -X -q -d attack -c "SET ROLE att_reader" -c "SET search_path = evil, pg_catalog" \
    -c "SELECT evil.upper('x')" >/dev/null 2>&1
is "$(q "SELECT count(*) FROM public.captured")" "1" "a planted function does record when it runs"
q "TRUNCATE public.captured" >/dev/null

# ---------------------------------------------------------------- class 2
for sql in \
    "UPDATE taskguard.task SET failure_id = 1" \
    "UPDATE taskguard.task SET status = 'succeeded', finished_at = now() - interval '10 years'" \
    "INSERT INTO taskguard.task (task_name) VALUES ('x')" \
    "DELETE FROM taskguard.task" \
    "INSERT INTO taskguard.dead_letter (task_id, task_name, status, failure_type, confidence, remediation) VALUES ($bolt, 'x', 'PENDING', 'UNKNOWN', 1, 'MANUAL_INVESTIGATION')" \
    "UPDATE taskguard.dead_letter SET resolved_at = now() - interval '1 year', status = 'RESOLVED'" \
    "INSERT INTO taskguard.dlq_delta (tenant, status, failure_type, by_retry, records) VALUES ('bolt', 'PENDING', 'UNKNOWN', false, -9223372036854775807)" \
    "UPDATE taskguard.failure_total SET failures = -1" \
    "INSERT INTO taskguard.idempotency_record (tenant, key_digest, expires_at) VALUES ('bolt', '\\x00', 'infinity')" \
    "DELETE FROM taskguard.idempotency_record" \
    "BEGIN; LOCK TABLE taskguard.task IN ACCESS EXCLUSIVE MODE; COMMIT" \
    "TRUNCATE taskguard.task" \
    "SELECT setval('taskguard.task_id_seq', 1)" \
    "SELECT taskguard._breaker_save('svc', 'open', 'auto', 1, 0, now(), 1, now(), now(), 9223372036854775807)" \
    "SELECT taskguard._task_discard($bolt)" \
    "SELECT taskguard._idempotency_count('job', 'bolt', 2147483647, 2147483647)" \
    "SELECT taskguard._dlq_retry(ARRAY[1], NULL, NULL)" \
    "SELECT taskguard._tick_step('prune_tasks', 1000)" \
    "SELECT taskguard._prune_tasks(1000)" \
    "SELECT taskguard.tick()" \
    "SELECT taskguard.dlq_purge('0 seconds', '{PENDING,RESOLVED,ABANDONED,RETRYING}')" \
    "SELECT taskguard.breaker_force('svc', 'open')" \
    "SELECT taskguard.breaker_reset('svc')" \
    "SELECT taskguard.grant_access('att_worker', 'admin')" \
    "INSERT INTO taskguard.tenant_member VALUES ('att_worker', 'bolt')" \
    "DELETE FROM taskguard.tenant_bound_role"; do
    got=$(as att_worker "$sql")
    case "$got" in 42501|0) r=0 ;; *) r=1 ;; esac
    ok $r "worker refused: ${sql:0:90} (got $got)"
done
for sql in \
    "SELECT taskguard.enqueue('x')" \
    "SELECT taskguard._tenant_member_bind()" \
    "SELECT taskguard._access_apply('att_reader', 'admin', true)" \
    "UPDATE taskguard.task SET status = 'ready'"; do
    got=$(as att_reader "$sql")
    ok "$([ "$got" = 42501 ] || [ "$got" = 0A000 ]; echo $?)" "reader refused: ${sql:0:90} (got $got)"
done

# ---------------------------------------------------------------- class 3
is "$(as att_worker "SELECT string_agg(DISTINCT coalesce(tenant, '-'), ',') FROM taskguard.task")" "acme" \
   "a tenant-bound worker sees its tenant's tasks only"
is "$(as att_worker "SELECT taskguard.complete($bolt)")" "f" "complete() of another tenant's task does nothing"
is "$(as att_worker "SELECT taskguard.cancel($bolt)")" "f" "cancel() of another tenant's task does nothing"
is "$(as att_worker "SELECT taskguard.requeue($bolt)")" "f" "requeue() of another tenant's task does nothing"
is "$(as att_worker "SELECT taskguard.heartbeat($bolt)")" "f" "heartbeat() of another tenant's task does nothing"
is "$(as att_worker "SELECT taskguard.fail($bolt, 'ValueError') IS NULL")" "t" "fail() of another tenant's task does nothing"
is "$(as att_worker "SELECT taskguard.enqueue('x', tenant => 'bolt')")" "42501" "enqueue for another tenant is refused"
is "$(as att_worker "SELECT count(*) FROM taskguard.claim('q', 'w', 10) WHERE tenant IS DISTINCT FROM 'acme'")" "0" \
   "claim() hands out no other tenant's task"
# a login mapped to acme that belongs to an unmapped worker group
is "$(login acme_login "SET ROLE att_grp; SELECT string_agg(DISTINCT coalesce(tenant, '-'), ',') FROM taskguard.task")" "acme" \
   "SET ROLE to an unmapped group does not widen a mapped login's view"
is "$(login acme_login "SET ROLE att_grp; SELECT taskguard._tenant_scope()")" "{acme}" \
   "the scope is judged from the session user too"
is "$(login acme_login "SET ROLE att_grp; SELECT count(*) FROM taskguard.claim('q', 'w', 10)")" "0" \
   "through the group it still claims no other tenant's task"
is "$(login acme_login "SET ROLE att_grp; SELECT taskguard.complete($bolt)")" "f" \
   "through the group it still cannot complete another tenant's task"
is "$(login acme_login "SET row_security = off; SELECT count(*) FROM taskguard.task")" "42501" \
   "row_security = off does not widen it (refused)"
is "$(login acme_login "SET SESSION AUTHORIZATION postgres")" "42501" "nor can it change its session user"
# an admin offboards acme_login: narrowing never widens
q "DELETE FROM taskguard.tenant_member WHERE role = 'acme_login'" >/dev/null
is "$(login acme_login "SELECT count(*) FROM taskguard.task")" "0" "after its last mapping is deleted it sees nothing"
is "$(login acme_login "SELECT taskguard._tenant_scope()")" "{}" "its scope is empty, not every tenant"
q "DELETE FROM taskguard.tenant_bound_role WHERE role = 'acme_login'" >/dev/null
is "$(login acme_login "SELECT taskguard._tenant_scope() IS NULL")" "t" \
   "an admin unbinds it on purpose by deleting its tenant_bound_role row"

# ---------------------------------------------------------------- class 7
# a leaky function in a WHERE clause of a view that filters by tenant itself
psql -X -q -d attack -c "SET ROLE att_worker" \
    -c "CREATE FUNCTION pg_temp.leak(text) RETURNS boolean COST 0.000001 LANGUAGE plpgsql AS
        \$f\$ BEGIN RAISE NOTICE 'leak:%', \$1; RETURN true; END \$f\$" \
    -c "SELECT count(*) FROM taskguard._visible_tenants WHERE pg_temp.leak(tenant)" >/tmp/attack_leak.$$ 2>&1
ok "$(grep -q 'leak:bolt' /tmp/attack_leak.$$; [ $? -ne 0 ]; echo $?)" "a leaky function sees no other tenant's name through a view"
rm -f /tmp/attack_leak.$$
is "$(q "SELECT count(*) FROM pg_class WHERE relnamespace = 'taskguard'::regnamespace AND relkind = 'v'
         AND NOT coalesce('security_barrier=true' = ANY (reloptions) OR 'security_invoker=true' = ANY (reloptions), false)")" "0" \
   "every view is either security_invoker or a security barrier"

# idempotency counters are per tenant: bolt's task names and counts stay bolt's
as att_bolt "SELECT taskguard.idempotency_check('k-' || g, '1 hour', 'bolt_secret_job') FROM generate_series(1, 3) g" >/dev/null
q "SELECT taskguard.grant_access('att_worker', 'reader'), taskguard.grant_access('att_bolt', 'reader')" >/dev/null
is "$(as att_worker "SELECT count(*) FROM taskguard.idempotency_stats WHERE task_name = 'bolt_secret_job'")" "0" \
   "another tenant's idempotency counters are not in idempotency_stats (live)"
is "$(as att_bolt "SELECT checks FROM taskguard.idempotency_stats WHERE task_name = 'bolt_secret_job'")" "3" \
   "its own tenant sees them"
q "SELECT taskguard._flush_counters()" >/dev/null
is "$(as att_worker "SELECT count(*) FROM taskguard.idempotency_stats WHERE task_name = 'bolt_secret_job'")" "0" \
   "nor once flushed to idempotency_counter"
is "$(as att_worker "SELECT count(*) FROM taskguard.idempotency_counter WHERE tenant = 'bolt'")" "0" \
   "idempotency_counter rows are under row security"
is "$(q "SELECT checks FROM taskguard.idempotency_stats WHERE task_name = 'bolt_secret_job'")" "3" \
   "an unbound role sees every tenant's counts"

# bad input to the internal functions this work added (as their owner would call them)
for sql in \
    "SELECT taskguard._idempotency_count(NULL, NULL, NULL, NULL)" \
    "SELECT taskguard._idempotency_count(repeat('n', 100000), repeat('ü', 100000), -5, 2147483647)" \
    "SELECT taskguard._idempotency_count('', '', 0, 0)" \
    "SELECT count(*) FROM taskguard._idempotency_tenant_counters()" \
    "SELECT taskguard._tenant_caller()" \
    "SELECT taskguard._tenant_scope()"; do
    got=$(psql -X -At -d attack -c "\set VERBOSITY verbose" -c "$sql" 2>&1 | errstate)
    ok "$(case "$got" in XX*|*terminated*|*"server closed"*) echo 1 ;; *) echo 0 ;; esac)" \
       "bad input handled: ${sql:0:80} (got ${got:0:20})"
done
is "$(q "SELECT count(*) FROM taskguard._idempotency_tenant_counters() WHERE length(tenant) > 63 OR length(task_name) > 200")" \
   "0" "huge tenant and task names are cut to the counter key's size"

# ---------------------------------------------------------------- nothing gained
is "$(q "SELECT count(*) FROM pg_roles WHERE rolname IN ('att_reader','att_worker','att_bolt','att_grp','acme_login') AND rolsuper")" "0" \
   "no attacker became a superuser"
is "$(q "$elevated")" "0" "no planted object ran with more rights at any point"
is "$(q "SELECT status || ':' || coalesce(failure_id::text, '-') FROM taskguard.task WHERE id = $bolt")" "ready:-" \
   "the other tenant's task is untouched"
done_testing
