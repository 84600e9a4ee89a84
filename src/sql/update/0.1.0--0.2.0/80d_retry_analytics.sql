-- 80d_retry_analytics.sql — issue 20, the analytics that 0.1.0 lacked: an
-- alert per failure type whose retry success rate is below the
-- 'retry_success_rate' threshold (alerts rows retry_success_rate:<TYPE>), the
-- confidence-over-time view taskguard.classification_confidence, an
-- operator's priority on a DLQ retry reaching the broker queue in
-- external-broker mode (claim_due_retries hands each record out at its
-- retry's priority), and the Prometheus families that show them.  Mirrors
-- src/sql/50_dlq.sql, 82_dashboard.sql and 84_prometheus.sql (final bodies:
-- sorts after 70_dashboards.sql and 80c_retry_advice.sql).

-- Failed attempts of the last 24 hours by hour, type and confidence band
-- (filters by tenant itself: a security barrier, as 90_access.sql makes it).
CREATE VIEW taskguard.classification_confidence WITH (security_barrier = true) AS
SELECT date_trunc('hour', e.time) AS time, e.failure_type, b.band_low,
       b.band_low + 0.1 AS band_high,
       coalesce(to_char(b.band_low, 'FM0.0') || '-' || to_char(b.band_low + 0.1, 'FM0.0'),
                'unknown') AS band,
       count(*) AS events, round(avg(e.confidence)::numeric, 3) AS avg_confidence
  FROM taskguard.failure_event e,
       LATERAL (SELECT CASE WHEN e.confidence <> 'NaN'   -- NULL and NaN: unknown
                            THEN (greatest(0, least(9, floor(e.confidence::numeric * 10)))
                                  / 10)::numeric(2, 1) END AS band_low) b
 WHERE e.time >= date_trunc('hour', now() - interval '24 hours')
   AND coalesce(e.tenant, '') IN (SELECT m.tenant FROM taskguard.metric_tenant m
                                   WHERE taskguard._tenant_visible(nullif(m.tenant, '')))
 GROUP BY 1, 2, 3;

-- (alerts and prometheus_metrics() gain their rows here too: 85b restates
-- both once, with every branch and family, after all the pieces that add one.)

-- Records are handed out at their retry's priority (the pinned one, else
-- recomputed): the dispatcher maps it to the broker queue.
CREATE OR REPLACE FUNCTION taskguard.claim_due_retries(batch int DEFAULT 100)
RETURNS SETOF taskguard.dead_letter
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 100
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 10000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM taskguard.dead_letter d
         WHERE d.status = 'PENDING' AND d.next_retry_at <= now() AND d.external
           AND taskguard._tenant_visible(d.tenant)
           AND (d.service IS NULL OR NOT taskguard._breaker_is_open(d.service))
         ORDER BY d.next_retry_at, d.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED)
    -- priority: this retry's, which names its broker queue (priority_queue):
    -- the operator's pinned one (dlq_retry(…, priority)), else recomputed as
    -- the scheduler does for queue tasks (aged from the first failure)
    UPDATE taskguard.dead_letter d
       SET status = 'RETRYING', next_retry_at = NULL, dispatched_at = now(),
           priority = (taskguard._retry_priority(d.priority_pinned, d.priority, d.task_name,
                           d.context->>'customer_tier', d.failure_type, d.retry_count,
                           d.first_failed_at)).priority
      FROM due WHERE d.id = due.id
    RETURNING d.*;
END
$$;

CREATE FUNCTION taskguard._prom_retry_policy_changes(OUT changes_manual bigint,
    OUT changes_auto bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    SELECT count(*) FILTER (WHERE NOT c.auto), count(*) FILTER (WHERE c.auto)
      INTO changes_manual, changes_auto
      FROM taskguard.retry_policy_change c;
END
$$;


-- Access as 90_access.sql leaves a fresh install: nothing for PUBLIC; the
-- new view for readers and admins (the roles that read taskguard.dlq), and
-- the read-only helper with it.
REVOKE ALL ON taskguard.classification_confidence FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._prom_retry_policy_changes() FROM PUBLIC;
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.dlq', 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON taskguard.classification_confidence TO %s', v_role);
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._prom_retry_policy_changes() TO %s',
                           v_role);
        END IF;
    END LOOP;
END
$$;
