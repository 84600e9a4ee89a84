#!/usr/bin/env bash
# 8 concurrent sessions claim and complete 4,000 tasks in batches:
# every task is claimed exactly once and ends succeeded.
. "$(dirname "$0")/../lib/tap.sh"

q "DROP TABLE IF EXISTS conc_claims; CREATE TABLE conc_claims (task_id bigint, worker text, attempt int)" >/dev/null
q "CREATE OR REPLACE PROCEDURE conc_work(w text) LANGUAGE plpgsql AS \$\$
DECLARE ids bigint[]; atts int[]; empty int := 0;
BEGIN
  LOOP
    SELECT array_agg(id), array_agg(attempts) INTO ids, atts FROM taskguard.claim('conc', w, 25);
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

q "SELECT count(*) FROM taskguard.enqueue_many('conc_job', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 4000) g), 'conc')" >/dev/null
pids=()
for w in 1 2 3 4 5 6 7 8; do
    psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "CALL conc_work('w$w')" >"$TG_WORK/conc_w$w.log" 2>&1 &
    pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
is "$fails" 0 "all 8 sessions finished without error"
is "$(q "SELECT count(*) FROM conc_claims")" 4000 "4,000 claims in total"
is "$(q "SELECT count(DISTINCT task_id) FROM conc_claims")" 4000 "each task claimed exactly once"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'conc' AND status = 'succeeded' AND attempts = 1")" 4000 \
   "every task succeeded on its first attempt"
echo "# work spread over $(q "SELECT count(DISTINCT worker) FROM conc_claims") sessions"
q "DROP TABLE conc_claims; DROP PROCEDURE conc_work(text); DELETE FROM taskguard.task WHERE queue = 'conc'" >/dev/null
done_testing
