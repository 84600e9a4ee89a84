#!/usr/bin/env bash
# 8 concurrent sessions claim and complete 4,000 tasks in batches of 25, then
# 2,000 one at a time (claim's own batch-1 statement): every task is claimed
# exactly once and ends succeeded.
. "$(dirname "$0")/../lib/tap.sh"

q "DROP TABLE IF EXISTS conc_claims; CREATE TABLE conc_claims (task_id bigint, worker text, attempt int)" >/dev/null
q "CREATE OR REPLACE PROCEDURE conc_work(w text, queue text, batch int) LANGUAGE plpgsql AS \$\$
DECLARE ids bigint[]; atts int[]; empty int := 0;
BEGIN
  LOOP
    SELECT array_agg(id), array_agg(attempts) INTO ids, atts FROM taskguard.claim(queue, w, batch);
    IF ids IS NULL THEN
      empty := empty + 1;
      EXIT WHEN empty > 3;
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

run_phase() {  # run_phase QUEUE N BATCH
    local queue=$1 n=$2 batch=$3 pids=() fails=0 p w
    q "TRUNCATE conc_claims" >/dev/null
    q "SELECT count(*) FROM taskguard.enqueue_many('conc_job', (SELECT array_agg(jsonb_build_object('n', g))
       FROM generate_series(1, $n) g), '$queue')" >/dev/null
    for w in 1 2 3 4 5 6 7 8; do
        psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "CALL conc_work('w$w', '$queue', $batch)" \
            >"$TG_WORK/conc_${queue}_w$w.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
    is "$fails" 0 "batch $batch: all 8 sessions finished without error"
    is "$(q "SELECT count(*) FROM conc_claims")" "$n" "batch $batch: $n claims in total"
    is "$(q "SELECT count(DISTINCT task_id) FROM conc_claims")" "$n" "batch $batch: each task claimed exactly once"
    is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = '$queue' AND status = 'succeeded' AND attempts = 1")" \
       "$n" "batch $batch: every task succeeded on its first attempt"
    echo "# batch $batch: work spread over $(q "SELECT count(DISTINCT worker) FROM conc_claims") sessions"
}
run_phase conc 4000 25
run_phase conc1 2000 1
q "DROP TABLE conc_claims; DROP PROCEDURE conc_work(text, text, int);
   DELETE FROM taskguard.task WHERE queue IN ('conc', 'conc1')" >/dev/null
done_testing
