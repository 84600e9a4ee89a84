#!/usr/bin/env bash
# 8 concurrent sessions claim and complete 4,000 tasks in batches of 25, then
# 2,000 one at a time (claim's own batch-1 statement): every task is claimed
# exactly once and ends succeeded.  Then the same by 8 tenant-bound sessions
# (their tenant's claim mark, _claim_tenants) with 2,000 other tenants' tasks
# ahead, while a producer keeps enqueueing tasks of their tenant.
. "$(dirname "$0")/../lib/tap.sh"

q "DROP TABLE IF EXISTS conc_claims; CREATE TABLE conc_claims (task_id bigint, worker text, attempt int)" >/dev/null
q "DROP TABLE IF EXISTS conc_producing; CREATE TABLE conc_producing (queue text)" >/dev/null
q "CREATE OR REPLACE PROCEDURE conc_work(w text, queue text, batch int) LANGUAGE plpgsql AS \$\$
DECLARE ids bigint[]; atts int[]; empty int := 0;
BEGIN
  LOOP
    SELECT array_agg(id), array_agg(attempts) INTO ids, atts FROM taskguard.claim(queue, w, batch);
    IF ids IS NULL THEN
      empty := empty + 1;
      -- (a producer that died leaves its row: give up after 10 s)
      EXIT WHEN empty > 3 AND (empty > 1000 OR NOT EXISTS (SELECT FROM conc_producing p WHERE p.queue = conc_work.queue));
      PERFORM pg_sleep(0.01);
    ELSE
      INSERT INTO conc_claims SELECT unnest(ids), w, unnest(atts);
      IF taskguard.complete_many(ids, atts) <> cardinality(ids) THEN
        RAISE EXCEPTION 'complete_many refused a batch of %', w;
      END IF;
    END IF;
    COMMIT;
  END LOOP;
END \$\$" >/dev/null

run_phase() {  # run_phase QUEUE N BATCH [ROLE TENANT PRODUCED]
    local queue=$1 n=$2 batch=$3 role=${4:-} tenant=${5:-} produced=${6:-0} pids=() fails=0 p w
    q "TRUNCATE conc_claims" >/dev/null
    q "SELECT count(*) FROM taskguard.enqueue_many('conc_job', (SELECT array_agg(jsonb_build_object('n', g))
       FROM generate_series(1, $n) g), '$queue', tenant => nullif('$tenant', ''))" >/dev/null
    if [ "$produced" -gt 0 ]; then
        q "INSERT INTO conc_producing VALUES ('$queue')" >/dev/null
        psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "CALL conc_produce('$queue', '$tenant', $produced)" \
            >"$TG_WORK/conc_${queue}_producer.log" 2>&1 &
        pids+=($!)
    fi
    for w in 1 2 3 4 5 6 7 8; do
        psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "SET ROLE ${role:-NONE}" \
            -c "CALL conc_work('w$w', '$queue', $batch)" >"$TG_WORK/conc_${queue}_w$w.log" 2>&1 &
        pids+=($!)
    done
    n=$((n + produced))
    for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
    is "$fails" 0 "${role:+tenant-bound, }batch $batch: all 8 sessions finished without error"
    is "$(q "SELECT count(*) FROM conc_claims")" "$n" "${role:+tenant-bound, }batch $batch: $n claims in total"
    is "$(q "SELECT count(DISTINCT task_id) FROM conc_claims")" "$n" "${role:+tenant-bound, }batch $batch: each task claimed exactly once"
    is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = '$queue' AND status = 'succeeded' AND attempts = 1")" \
       "$n" "${role:+tenant-bound, }batch $batch: every task succeeded on its first attempt"
    echo "# ${role:+tenant-bound, }batch $batch: work spread over $(q "SELECT count(DISTINCT worker) FROM conc_claims") sessions"
}
run_phase conc 4000 25
run_phase conc1 2000 1

# tenant-bound workers: enqueued tasks of their tenant in transactions of 20,
# of mixed priority and some older than the rest, lower the tenant's mark
q "DO \$\$ BEGIN DROP ROLE IF EXISTS conc_tb; CREATE ROLE conc_tb; PERFORM taskguard.grant_access('conc_tb', 'worker');
     INSERT INTO taskguard.tenant_member VALUES ('conc_tb', 'conc_t'); END \$\$" >/dev/null
q "GRANT ALL ON conc_claims, conc_producing TO conc_tb; GRANT EXECUTE ON PROCEDURE conc_work(text, text, int) TO conc_tb" >/dev/null
q "CREATE OR REPLACE PROCEDURE conc_produce(queue text, tenant text, n int) LANGUAGE plpgsql AS \$\$
BEGIN
  FOR i IN 1..n / 20 LOOP
    INSERT INTO taskguard.task (queue, task_name, tenant, priority, priority_score, run_at)
    SELECT queue, 'conc_job', tenant, (ARRAY['LOW', 'MEDIUM', 'HIGH'])[1 + g % 3]::taskguard.priority, g % 3,
           now() - (g % 7) * interval '1 minute' FROM generate_series(1, 20) g;
    COMMIT;
    PERFORM pg_sleep(0.002);
  END LOOP;
  DELETE FROM conc_producing p WHERE p.queue = conc_produce.queue;
END \$\$" >/dev/null
q "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
   SELECT q, 'other_job', 'conc_o' || (g % 20), now() - interval '1 hour'
     FROM generate_series(1, 2000) g, (VALUES ('conc_tb1'), ('conc_tb25')) v(q)" >/dev/null
run_phase conc_tb1 1000 1 conc_tb conc_t 1000
run_phase conc_tb25 1000 25 conc_tb conc_t 1000
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue IN ('conc_tb1', 'conc_tb25') AND tenant <> 'conc_t' AND status = 'ready'")" 4000 \
   "tenant-bound: the other tenants' 2,000 tasks in each queue were never touched"
q "DROP TABLE conc_claims, conc_producing; DROP PROCEDURE conc_work(text, text, int);
   DROP PROCEDURE conc_produce(text, text, int);
   DELETE FROM taskguard.task WHERE queue IN ('conc', 'conc1', 'conc_tb1', 'conc_tb25')" >/dev/null
done_testing
