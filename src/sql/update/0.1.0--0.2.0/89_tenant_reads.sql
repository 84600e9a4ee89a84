-- 0.2.0: what a tenant-bound reader reads costs what its own rows cost (issue 24).
CREATE INDEX failure_event_tenant_idx ON taskguard.failure_event (tenant, time);
CREATE OR REPLACE VIEW taskguard.classification_confidence WITH (security_barrier = true) AS
SELECT date_trunc('hour', e.time) AS time, e.failure_type, b.band_low,
       b.band_low + 0.1 AS band_high,
       coalesce(to_char(b.band_low, 'FM0.0') || '-' || to_char(b.band_low + 0.1, 'FM0.0'),
                'unknown') AS band,
       count(*) AS events, round(avg(e.confidence)::numeric, 3) AS avg_confidence
  -- an unbound caller reads every event of the window; a tenant-bound one its
  -- tenants' (failure_event_tenant_idx), not the others'; one-time filters
  -- pick the branch
  FROM (SELECT f.time, f.failure_type, f.confidence FROM taskguard.failure_event f
         WHERE f.time >= date_trunc('hour', now() - interval '24 hours')
           AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT f.time, f.failure_type, f.confidence FROM taskguard.failure_event f
         WHERE f.tenant = ANY (taskguard._tenant_scope())
           AND f.time >= date_trunc('hour', now() - interval '24 hours')
           AND taskguard._tenant_visible(f.tenant)) e,
       LATERAL (SELECT CASE WHEN e.confidence <> 'NaN'   -- NULL and NaN: unknown
                            THEN (greatest(0, least(9, floor(e.confidence::numeric * 10)))
                                  / 10)::numeric(2, 1) END AS band_low) b
 GROUP BY 1, 2, 3;
