#!/usr/bin/env bash
# test/demo.sh — a realistic workload against the demo cluster, then the views.
set -euo pipefail
P() { psql -X -q -d taskguard -v ON_ERROR_STOP=1 "$@"; }
echo "== enqueue 500 tasks in three queues"
P -c "SELECT count(*) AS enqueued FROM (
        SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 'user' || g || '@example.com'), 'default')
          FROM generate_series(1, 300) g
        UNION ALL
        SELECT taskguard.enqueue('process_payment', jsonb_build_object('order', g), 'payments',
                                 customer_tier => 'enterprise', service => 'stripe')
          FROM generate_series(1, 150) g
        UNION ALL
        SELECT taskguard.enqueue('rebuild_index', '{}', 'maintenance', priority => 'LOW')
          FROM generate_series(1, 50) g) s"
echo "== workers claim in batches of 20, complete most, fail some"
for q in default payments maintenance; do
  P -c "WITH c AS (SELECT * FROM taskguard.claim('$q', 'demo-worker', 1000))
        SELECT count(*) FILTER (WHERE ok) AS completed, count(*) FILTER (WHERE NOT ok) AS failed
          FROM (SELECT CASE WHEN c.id % 10 = 0
                            THEN (taskguard.fail(c.id, 'requests.exceptions.ConnectionError', 'connection refused', '{}', c.attempts)).action IS NULL
                            ELSE taskguard.complete(c.id, '{\"ok\":true}', c.attempts) END AS ok
                  FROM c) s"
done
echo "== tasks by status"
P -c "SELECT queue, status, count(*) FROM taskguard.task GROUP BY 1, 2 ORDER BY 1, 2"
