-- 86_retry_advice.sql — retry advice from the recorded history (docs/reference.md#retry-advice):
-- how failures ended (taskguard.retry_outcomes), what another retry policy
-- would have done with them (retry_simulate), which policy the history
-- recommends (taskguard.retry_advice), and the admin's action that applies
-- it (retry_apply_advice, recorded in taskguard.retry_policy_change).
--
-- One failure is one dead_letter record: it holds the failure type, the
-- retries made (retry_count), when the failure started (first_failed_at) and
-- how it ended (status, resolution, resolved_at); the per-attempt rows of
-- failure_event carry the confidence and the delay chosen before each retry.
-- Outcomes:
--   recovered        RESOLVED by a successful retry (queue mode: resolution
--                    'retry'), or external-broker mode resolve(): on retry
--                    retry_count + 1
--   resolved_by_hand RESOLVED otherwise (an operator's dlq_resolve)
--   exhausted        ABANDONED after all the retries its policy allowed
--   abandoned        ABANDONED otherwise (not retryable, cancelled, operator)
--   open             PENDING or RETRYING
-- The replay (_retry_replay) treats a recovery at time T after the first
-- failure as "the cause was gone by T": a candidate policy recovers the
-- failure with its first retry at or after T.  Failures that never recovered
-- stay unrecovered under every policy (nothing tells that more retries would
-- have helped) and spend all its retries; open ones are not replayed.
-- Jitter is replayed by its expected delay: none ×1, equal ×0.75, full ×0.5.

-- The outcome of one failure record (see above).
CREATE FUNCTION taskguard._retry_outcome(status taskguard.dlq_status, resolution text,
    external boolean, retry_count int, max_retries int)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE
    WHEN status = 'RESOLVED' AND (resolution = 'retry' OR external) THEN 'recovered'
    WHEN status = 'RESOLVED' THEN 'resolved_by_hand'
    WHEN status = 'ABANDONED' AND max_retries > 0 AND retry_count >= max_retries THEN 'exhausted'
    WHEN status = 'ABANDONED' THEN 'abandoned'
    ELSE 'open' END
$$;

-- The effective policy of a type for a task: its override's non-NULL
-- columns, the type's default row for the rest, as retry_decision reads them
-- (not retryable: no retries; no delays: 1 s and 1 h).
CREATE FUNCTION taskguard._retry_policy_effective(task_name text,
    failure_type taskguard.failure_type,
    OUT max_retries int, OUT base_delay interval, OUT max_delay interval,
    OUT multiplier float8, OUT jitter text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN coalesce(o.retryable, d.retryable) THEN coalesce(o.max_retries, d.max_retries)
            ELSE 0 END,
       coalesce(o.base_delay, d.base_delay, interval '1 second'),
       greatest(coalesce(o.max_delay, d.max_delay, interval '1 hour'),
                coalesce(o.base_delay, d.base_delay, interval '1 second')),
       coalesce(o.multiplier, d.multiplier), coalesce(o.jitter, d.jitter)
  FROM taskguard.retry_policy d
  LEFT JOIN taskguard.retry_policy o ON o.failure_type = d.failure_type AND o.task_name = $1
 WHERE d.failure_type = $2 AND d.task_name IS NULL
$$;

-- Check a candidate policy as backoff() does, naming retry_simulate's
-- arguments; the expected-delay factor of its jitter.
CREATE FUNCTION taskguard._retry_check_policy(max_retries int, base_delay interval,
    max_delay interval, multiplier float8, jitter text)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF max_retries IS NULL OR base_delay IS NULL OR max_delay IS NULL OR multiplier IS NULL
       OR jitter IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL',
            CASE WHEN max_retries IS NULL THEN 'max_retries' WHEN base_delay IS NULL THEN 'base_delay'
                 WHEN max_delay IS NULL THEN 'max_delay' WHEN multiplier IS NULL THEN 'multiplier'
                 ELSE 'jitter' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_retries < 0 OR max_retries > 1000000 THEN
        RAISE EXCEPTION 'invalid max_retries for taskguard.retry_simulate: must be 0 to 1000000, got %',
            max_retries USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF base_delay < interval '0' THEN
        RAISE EXCEPTION 'invalid base_delay for taskguard.retry_simulate: must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_delay < base_delay THEN
        RAISE EXCEPTION 'invalid max_delay for taskguard.retry_simulate: must be at least base_delay'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF multiplier = 'NaN' OR multiplier = 'Infinity' OR multiplier < 1 THEN
        RAISE EXCEPTION 'invalid multiplier for taskguard.retry_simulate: must be a finite number of at least 1, got %',
            multiplier USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN CASE jitter WHEN 'none' THEN 1.0 WHEN 'equal' THEN 0.75 WHEN 'full' THEN 0.5
        ELSE taskguard._retry_bad_jitter(jitter) END;
END
$$;

CREATE FUNCTION taskguard._retry_bad_jitter(jitter text)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'invalid jitter for taskguard.retry_simulate: "%"', jitter
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The jitter modes are none, full and equal.';
END
$$;

-- Replay failures under a policy.  recovery_secs: the recovered failures'
-- times from first failure to recovery, sorted ascending; lost: the closed
-- failures that never recovered.  One row per max_retries from 0 to
-- retries when every_max is true, else one row for max_retries = retries.
-- Retry i comes at t_i = Σ_{k≤i} factor × min(cap, base × multiplier^(k−1))
-- after the first failure; a failure recovered at T is recovered by the first
-- t_i ≥ T, spending i retries.  One binary search per retry while the delays
-- grow; once they are constant (the cap, multiplier 1) the next retry that
-- recovers something is computed directly, so a large max_retries costs
-- nothing: at most one search per retry that recovers something.
CREATE FUNCTION taskguard._retry_replay(recovery_secs float8[], lost bigint, retries int,
    base_secs float8, cap_secs float8, multiplier float8, factor float8, every_max boolean)
RETURNS TABLE (max_retries int, failures_replayed bigint, recovered bigint,
               attempts_spent bigint, attempts_wasted bigint,
               median_added_delay interval, p90_added_delay interval)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v_rec   float8[] := coalesce(recovery_secs, '{}');
    v_n     int := coalesce(cardinality(recovery_secs), 0);
    v_total bigint := v_n + coalesce(lost, 0);
    -- the retries that recover something: retry number, its time, how many
    v_ri    int[] := '{}';
    v_rt    float8[] := '{}';
    v_rc    bigint[] := '{}';
    v_k     int := 0;            -- entries in v_ri/v_rt/v_rc
    v_step  float8 := base_secs; -- the next retry's delay before the cap and jitter
    v_d     float8;
    v_now   float8 := 0;         -- t of the last retry made
    v_prev  int := 0;            -- recoveries reached so far
    v_lo    int;
    v_hi    int;
    v_mid   int;
    v_i     bigint := 0;
    v_j     bigint;
    v_m     int;
    v_recov bigint;
    v_spent bigint;
    v_cum   bigint;
    v_p50   float8;
    v_p90   float8;
BEGIN
    WHILE v_i < retries AND v_prev < v_n LOOP
        v_d := factor * least(cap_secs, v_step);
        IF v_d > 0 AND (v_step >= cap_secs OR multiplier = 1) THEN
            -- constant delays from here: the next recovery (at T) needs
            -- ceil((T − t)/d) more retries; jump to that retry
            WHILE v_prev < v_n LOOP
                v_j := v_i + greatest(1, ceil((v_rec[v_prev + 1] - v_now) / v_d - 1e-9))::bigint;
                EXIT WHEN v_j > retries;
                v_now := v_now + (v_j - v_i) * v_d;
                v_i := v_j;
                v_lo := v_prev; v_hi := v_n;
                WHILE v_lo < v_hi LOOP
                    v_mid := (v_lo + v_hi + 1) / 2;
                    IF v_rec[v_mid] <= v_now THEN v_lo := v_mid; ELSE v_hi := v_mid - 1; END IF;
                END LOOP;
                v_lo := greatest(v_lo, v_prev + 1);   -- within rounding of t: that one too
                v_k := v_k + 1;
                v_ri[v_k] := v_i;
                v_rt[v_k] := v_now;
                v_rc[v_k] := v_lo - v_prev;
                v_prev := v_lo;
            END LOOP;
            EXIT;
        END IF;
        v_i := v_i + 1;
        v_now := v_now + v_d;
        v_step := CASE WHEN v_step > 0 AND multiplier > cap_secs / v_step THEN cap_secs
                       ELSE v_step * multiplier END;   -- capped: never overflows
        -- v_lo: how many recoveries come at or before this retry
        v_lo := v_prev; v_hi := v_n;
        WHILE v_lo < v_hi LOOP
            v_mid := (v_lo + v_hi + 1) / 2;
            IF v_rec[v_mid] <= v_now THEN v_lo := v_mid; ELSE v_hi := v_mid - 1; END IF;
        END LOOP;
        IF v_lo > v_prev THEN
            v_k := v_k + 1;
            v_ri[v_k] := v_i;
            v_rt[v_k] := v_now;
            v_rc[v_k] := v_lo - v_prev;
            v_prev := v_lo;
        END IF;
        -- no delay: every later retry comes at the same time and recovers nothing more
        EXIT WHEN v_d <= 0;
    END LOOP;

    FOR v_m IN CASE WHEN every_max THEN 0 ELSE retries END .. retries LOOP
        v_recov := 0; v_spent := 0;
        FOR e IN 1 .. v_k LOOP
            EXIT WHEN v_ri[e] > v_m;
            v_recov := v_recov + v_rc[e];
            v_spent := v_spent + v_ri[e] * v_rc[e];
        END LOOP;
        v_p50 := NULL; v_p90 := NULL; v_cum := 0;
        FOR e IN 1 .. v_k LOOP
            EXIT WHEN v_ri[e] > v_m;
            v_cum := v_cum + v_rc[e];
            IF v_p50 IS NULL AND v_cum >= 0.5 * v_recov THEN v_p50 := v_rt[e]; END IF;
            IF v_p90 IS NULL AND v_cum >= 0.9 * v_recov THEN v_p90 := v_rt[e]; END IF;
        END LOOP;
        max_retries := v_m;
        failures_replayed := v_total;
        recovered := v_recov;
        attempts_wasted := (v_total - v_recov) * v_m;
        attempts_spent := v_spent + attempts_wasted;
        median_added_delay := make_interval(secs => v_p50);
        p90_added_delay := make_interval(secs => v_p90);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The failures of one task_name and failure_type since a time, as replay input.
CREATE FUNCTION taskguard._retry_history(task_name text, failure_type taskguard.failure_type,
    since timestamptz, OUT recovery_secs float8[], OUT lost bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(array_agg(extract(epoch FROM d.resolved_at - d.first_failed_at)::float8
                          ORDER BY d.resolved_at - d.first_failed_at)
                    FILTER (WHERE o = 'recovered'), '{}'),
       count(*) FILTER (WHERE o NOT IN ('recovered', 'open'))
  FROM taskguard.dead_letter d,
       LATERAL taskguard._retry_outcome(d.status, d.resolution, d.external, d.retry_count,
                                        d.max_retries) o
 WHERE d.task_name = $1 AND d.failure_type = $2 AND d.first_failed_at >= $3
$$;

-- What a retry policy would have done with the recorded failures (docs/reference.md#retry-advice).
CREATE FUNCTION taskguard.retry_simulate(task_name text, failure_type taskguard.failure_type,
    max_retries int, base_delay interval, max_delay interval, multiplier float8,
    jitter text DEFAULT 'none', since timestamptz DEFAULT now() - interval '30 days')
RETURNS TABLE (failures_replayed bigint, recovered bigint, attempts_spent bigint,
               attempts_wasted bigint, median_added_delay interval, p90_added_delay interval)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v_factor float8;
    v_hist   record;
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    PERFORM taskguard._require(failure_type, 'failure_type');
    PERFORM taskguard._require(since, 'since');
    v_factor := taskguard._retry_check_policy(max_retries, base_delay, max_delay, multiplier, jitter);
    v_hist := taskguard._retry_history(task_name, failure_type, since);
    RETURN QUERY
    SELECT r.failures_replayed, r.recovered, r.attempts_spent, r.attempts_wasted,
           r.median_added_delay, r.p90_added_delay
      FROM taskguard._retry_replay(v_hist.recovery_secs, v_hist.lost, retry_simulate.max_retries,
               extract(epoch FROM base_delay)::float8, extract(epoch FROM max_delay)::float8,
               multiplier, v_factor, false) r;
END
$$;

-- How failures ended, per task_name and failure_type, over the last 30 days
-- (by first failure).  Retry n is attempt n + 1.  recovery_rate_by_retry:
-- of the failures that got retry n, the share that recovered on it.
CREATE VIEW taskguard.retry_outcomes AS
WITH ep AS (
    SELECT d.task_name, d.failure_type, o.outcome,
           d.retry_count + CASE WHEN o.outcome = 'recovered' THEN 1 ELSE 0 END AS retries,
           CASE WHEN o.outcome = 'recovered' THEN d.resolved_at - d.first_failed_at END AS recovery_time
      FROM taskguard.dead_letter d,
           LATERAL (SELECT taskguard._retry_outcome(d.status, d.resolution, d.external,
                                                    d.retry_count, d.max_retries) AS outcome) o
     WHERE d.first_failed_at >= now() - interval '30 days'),
grp AS (
    SELECT e.task_name, e.failure_type, count(*) AS failures,
           count(*) FILTER (WHERE e.outcome = 'recovered') AS recovered,
           count(*) FILTER (WHERE e.outcome = 'exhausted') AS exhausted,
           count(*) FILTER (WHERE e.outcome = 'abandoned') AS abandoned,
           count(*) FILTER (WHERE e.outcome = 'resolved_by_hand') AS resolved_by_hand,
           count(*) FILTER (WHERE e.outcome = 'open') AS still_open,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY e.recovery_time) AS recovery_time_p50,
           percentile_disc(0.9) WITHIN GROUP (ORDER BY e.recovery_time) AS recovery_time_p90,
           coalesce(sum(e.retries) FILTER (WHERE e.outcome NOT IN ('recovered', 'open')), 0)
               AS retries_never_recovered,
           max(e.retries) AS max_retries_made
      FROM ep e GROUP BY e.task_name, e.failure_type),
hist AS (            -- failures by retries made (small: one row per count)
    SELECT e.task_name, e.failure_type, e.retries, count(*) AS n,
           count(*) FILTER (WHERE e.outcome = 'recovered') AS rec
      FROM ep e GROUP BY e.task_name, e.failure_type, e.retries),
per_retry AS (        -- retry n: recovered on it, failures that got it
    SELECT g.task_name, g.failure_type, s.n,
           coalesce(sum(h.rec) FILTER (WHERE h.retries = s.n), 0) AS rec_n,
           sum(h.n) FILTER (WHERE h.retries >= s.n) AS reached
      FROM grp g
     CROSS JOIN LATERAL generate_series(1, greatest(g.max_retries_made, 1)) s (n)
      JOIN hist h ON h.task_name = g.task_name AND h.failure_type = g.failure_type
     GROUP BY g.task_name, g.failure_type, s.n),
by_retry AS (
    SELECT p.task_name, p.failure_type,
           jsonb_object_agg(p.n, p.rec_n ORDER BY p.n) AS recovered_by_retry,
           jsonb_object_agg(p.n, round(p.rec_n / nullif(p.reached, 0), 4) ORDER BY p.n)
               AS recovery_rate_by_retry
      FROM per_retry p GROUP BY p.task_name, p.failure_type)
SELECT g.task_name, g.failure_type, g.failures, g.recovered, g.exhausted, g.abandoned,
       g.resolved_by_hand, g.still_open,
       round(g.recovered::numeric / nullif(g.failures - g.still_open, 0), 4) AS recovery_rate,
       b.recovered_by_retry, b.recovery_rate_by_retry,
       g.recovery_time_p50, g.recovery_time_p90, g.retries_never_recovered
  FROM grp g JOIN by_retry b USING (task_name, failure_type);

-- Candidate policies searched by retry_advice for one history and current
-- policy: first delays from the current one, round values and the recorded
-- recovery times (so "recovers only after 60 s" can give "start at 60 s"),
-- multipliers 1, 2 and the current one, max_retries 0 to max(10, current)
-- (at most 25: retry_advice replays the current policy itself);
-- the cap and the jitter stay the current ones (the cap at least the delay).
CREATE FUNCTION taskguard._retry_candidates(recovery_secs float8[], lost bigint,
    cur_max int, cur_base interval, cur_cap interval, cur_mult float8, cur_jitter text)
RETURNS TABLE (max_retries int, base_delay interval, max_delay interval, multiplier float8,
               failures_replayed bigint, recovered bigint, attempts_spent bigint,
               attempts_wasted bigint, median_added_delay interval, p90_added_delay interval)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
WITH f AS (SELECT CASE cur_jitter WHEN 'full' THEN 0.5 WHEN 'equal' THEN 0.75 ELSE 1.0 END::float8 AS f,
                  coalesce(cardinality(recovery_secs), 0) AS n),
bases AS (
    SELECT DISTINCT b FROM (
        SELECT extract(epoch FROM cur_base)::float8 AS b
        UNION ALL SELECT unnest('{1,5,15,30,60,120,300}'::float8[])
        UNION ALL SELECT ceil(recovery_secs[greatest(1, ceil(q * f.n)::int)] / f.f)
          FROM f, unnest('{0.1,0.5,0.9,1.0}'::float8[]) q WHERE f.n > 0) x
     WHERE b IS NOT NULL),
mults AS (SELECT DISTINCT m FROM unnest(ARRAY[1.0, 2.0, cur_mult]::float8[]) m)
SELECT r.max_retries, make_interval(secs => b.b),
       greatest(cur_cap, make_interval(secs => b.b)), m.m,
       r.failures_replayed, r.recovered, r.attempts_spent, r.attempts_wasted,
       r.median_added_delay, r.p90_added_delay
  FROM bases b, mults m, f,
       taskguard._retry_replay(recovery_secs, lost, greatest(10, least(cur_max, 25)), b.b,
           greatest(extract(epoch FROM cur_cap)::float8, b.b), m.m, f.f, true) r
$$;

-- Advice per task_name and failure_type (docs/reference.md#retry-advice): the current policy's
-- replayed figures, the best candidate (most failures recovered, then fewest
-- attempts, then the shortest median delay; the current policy wins ties)
-- and why.  Fewer than min_sample closed failures in 30 days: no advice.
CREATE VIEW taskguard.retry_advice AS
WITH hist AS (
    SELECT d.task_name, d.failure_type,
           coalesce(array_agg(extract(epoch FROM d.resolved_at - d.first_failed_at)::float8
                              ORDER BY d.resolved_at - d.first_failed_at)
                        FILTER (WHERE o.outcome = 'recovered'), '{}') AS recovery_secs,
           count(*) FILTER (WHERE o.outcome NOT IN ('recovered', 'open')) AS lost,
           count(*) FILTER (WHERE o.outcome <> 'open') AS sample,
           max(d.retry_count + 1) FILTER (WHERE o.outcome = 'recovered') AS max_recovered_retry
      FROM taskguard.dead_letter d,
           LATERAL (SELECT taskguard._retry_outcome(d.status, d.resolution, d.external,
                                                    d.retry_count, d.max_retries) AS outcome) o
     WHERE d.first_failed_at >= now() - interval '30 days'
     GROUP BY d.task_name, d.failure_type),
cur AS (
    SELECT h.*, p.max_retries AS cur_max, p.base_delay AS cur_base, p.max_delay AS cur_cap,
           p.multiplier AS cur_mult, p.jitter AS cur_jitter, 20 AS min_sample
      FROM hist h, LATERAL taskguard._retry_policy_effective(h.task_name, h.failure_type) p),
fig AS (
    SELECT c.*, now_.recovered AS cur_recovered, now_.attempts_spent AS cur_spent,
           now_.attempts_wasted AS cur_wasted, now_.median_added_delay AS cur_p50,
           best.*
      FROM cur c
      LEFT JOIN LATERAL taskguard._retry_replay(c.recovery_secs, c.lost, c.cur_max,
               extract(epoch FROM c.cur_base)::float8, extract(epoch FROM c.cur_cap)::float8,
               c.cur_mult, CASE c.cur_jitter WHEN 'full' THEN 0.5 WHEN 'equal' THEN 0.75
                                             ELSE 1.0 END, false) now_ ON c.sample >= c.min_sample
      LEFT JOIN LATERAL (
            SELECT k.max_retries AS rec_max, k.base_delay AS rec_base, k.max_delay AS rec_cap,
                   k.multiplier AS rec_mult, k.recovered AS rec_recovered,
                   k.attempts_spent AS rec_spent, k.attempts_wasted AS rec_wasted,
                   k.median_added_delay AS rec_p50
              FROM taskguard._retry_candidates(c.recovery_secs, c.lost, c.cur_max, c.cur_base,
                       c.cur_cap, c.cur_mult, c.cur_jitter) k
             ORDER BY k.recovered DESC, k.attempts_spent, k.median_added_delay NULLS FIRST,
                      k.max_retries, k.multiplier <> c.cur_mult, k.base_delay <> c.cur_base,
                      k.base_delay, k.multiplier
             LIMIT 1) best ON c.sample >= c.min_sample)
SELECT f.task_name, f.failure_type, f.sample, f.min_sample,
       f.cur_max AS current_max_retries, f.cur_base AS current_base_delay,
       f.cur_cap AS current_max_delay, f.cur_mult AS current_multiplier, f.cur_jitter AS jitter,
       f.cur_recovered AS current_recovered, f.cur_spent AS current_attempts_spent,
       f.cur_wasted AS current_attempts_wasted, f.cur_p50 AS current_median_delay,
       f.keep AS recommended_max_retries,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_base ELSE f.rec_base END
           AS recommended_base_delay,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_cap ELSE f.rec_cap END
           AS recommended_max_delay,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_mult ELSE f.rec_mult END
           AS recommended_multiplier,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_recovered ELSE f.rec_recovered END
           AS recommended_recovered,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_spent ELSE f.rec_spent END
           AS recommended_attempts_spent,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_wasted ELSE f.rec_wasted END
           AS recommended_attempts_wasted,
       CASE WHEN f.keep IS NULL THEN NULL WHEN f.same THEN f.cur_p50 ELSE f.rec_p50 END
           AS recommended_median_delay,
       f.reason
  FROM (
    SELECT x.*,
           CASE WHEN x.sample < x.min_sample THEN NULL
                WHEN x.same THEN x.cur_max ELSE x.rec_max END AS keep,
           CASE
             WHEN x.sample < x.min_sample THEN format(
                 'too little data: %s closed failures in 30 days, advice needs %s',
                 x.sample, x.min_sample)
             WHEN x.same THEN format(
                 'keep the current policy: it recovers %s of %s failures, no candidate does better',
                 x.cur_recovered, x.sample)
             ELSE concat_ws('; ',
                 CASE WHEN x.rec_recovered = 0 THEN format(
                          'never recovered in %s failures: stop retrying', x.sample)
                      WHEN x.rec_max < x.cur_max AND x.rec_base = x.cur_base
                           AND x.rec_mult = x.cur_mult THEN format(
                          'never recovered after retry %s in %s failures: stop at %s',
                          x.max_recovered_retry, x.sample, x.rec_max) END,
                 CASE WHEN x.rec_recovered > 0 AND x.rec_base <> x.cur_base THEN format(
                          'recovered only after ≥ %s s: start at %s s, at most %s retries',
                          round(x.recovery_secs[1]::numeric, 1),
                          extract(epoch FROM x.rec_base)::float8, x.rec_max) END,
                 CASE WHEN x.rec_recovered > 0 AND x.rec_mult <> x.cur_mult THEN format(
                          'multiplier %s', x.rec_mult) END,
                 format('recovers %s of %s (now %s) with %s retries (now %s)',
                        x.rec_recovered, x.sample, x.cur_recovered, x.rec_spent, x.cur_spent))
           END AS reason
      FROM (SELECT fi.*,
                   fi.sample >= fi.min_sample
                   AND (fi.rec_recovered <= fi.cur_recovered AND fi.rec_spent >= fi.cur_spent)
                   AS same
              FROM fig fi) x) f;

-- Every change retry_apply_advice (or, later, auto-tuning) made to a
-- per-task retry policy: who, when, the values before and after.
CREATE TABLE taskguard.retry_policy_change (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    changed_by   text NOT NULL DEFAULT current_user,
    task_name    text NOT NULL,
    failure_type taskguard.failure_type NOT NULL,
    old_policy   jsonb NOT NULL,   -- the override row before (or {} when there was none)
    new_policy   jsonb NOT NULL,   -- the override row after
    reason       text,
    auto         boolean NOT NULL DEFAULT false
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.retry_policy_change', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.retry_policy_change_id_seq', '');

-- Write a recommendation into the per-task override and record the change;
-- the change's id.
CREATE FUNCTION taskguard._retry_apply(task_name text, failure_type taskguard.failure_type,
    max_retries int, base_delay interval, max_delay interval, multiplier float8, reason text,
    auto boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_old jsonb;
    v_new jsonb;
    v_id  bigint;
BEGIN
    SELECT to_jsonb(p) INTO v_old FROM taskguard.retry_policy p
     WHERE p.task_name = _retry_apply.task_name AND p.failure_type = _retry_apply.failure_type
       FOR UPDATE;
    INSERT INTO taskguard.retry_policy AS p (failure_type, task_name, max_retries, base_delay,
                                             max_delay, multiplier)
    VALUES (_retry_apply.failure_type, _retry_apply.task_name, _retry_apply.max_retries,
            _retry_apply.base_delay, _retry_apply.max_delay, _retry_apply.multiplier)
    ON CONFLICT ON CONSTRAINT retry_policy_key DO UPDATE
       SET max_retries = EXCLUDED.max_retries, base_delay = EXCLUDED.base_delay,
           max_delay = EXCLUDED.max_delay, multiplier = EXCLUDED.multiplier
    RETURNING to_jsonb(p) INTO v_new;
    INSERT INTO taskguard.retry_policy_change (task_name, failure_type, old_policy, new_policy,
                                               reason, auto)
    VALUES (_retry_apply.task_name, _retry_apply.failure_type, coalesce(v_old, '{}'), v_new,
            _retry_apply.reason, _retry_apply.auto)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- Apply retry_advice's recommendation for one task_name and failure_type
-- (an admin's action): write the per-task override and record the change.
-- Returns the change's id, NULL when there is no advice to apply.
CREATE FUNCTION taskguard.retry_apply_advice(task_name text, failure_type taskguard.failure_type)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_adv taskguard.retry_advice;
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    PERFORM taskguard._require(failure_type, 'failure_type');
    SELECT * INTO v_adv FROM taskguard.retry_advice a
     WHERE a.task_name = retry_apply_advice.task_name
       AND a.failure_type = retry_apply_advice.failure_type;
    IF NOT FOUND OR v_adv.recommended_max_retries IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN taskguard._retry_apply(task_name, failure_type, v_adv.recommended_max_retries,
        v_adv.recommended_base_delay, v_adv.recommended_max_delay, v_adv.recommended_multiplier,
        v_adv.reason, false);
END
$$;

-- Auto-tuning: apply every piece of advice that changes something and stays
-- within the bounds of docs/failures.md "Retry advice":
--   * at least 100 closed failures (5 × min_sample) in 30 days;
--   * no change to that task and type (automatic or by hand) in 24 hours;
--   * max_retries at most the larger of the current and the type default's;
--   * base_delay within a quarter and 4 times the current one (up to 4 s when
--     the current one is 0), at most 1 hour; the multiplier 1 to 4.
-- Returns how many policies changed, each recorded with auto = true.
CREATE FUNCTION taskguard._retry_tune_apply()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_adv record;
    v_n   int := 0;
BEGIN
    FOR v_adv IN
        SELECT a.* FROM taskguard.retry_advice a
         WHERE a.sample >= 5 * a.min_sample
           AND a.recommended_max_retries IS NOT NULL
           AND (a.recommended_max_retries, a.recommended_base_delay, a.recommended_max_delay,
                a.recommended_multiplier) IS DISTINCT FROM
               (a.current_max_retries, a.current_base_delay, a.current_max_delay,
                a.current_multiplier)
           AND a.recommended_max_retries <= greatest(a.current_max_retries,
                   (SELECT d.max_retries FROM taskguard.retry_policy d
                     WHERE d.failure_type = a.failure_type AND d.task_name IS NULL))
           AND a.recommended_base_delay
               BETWEEN a.current_base_delay / 4 AND greatest(a.current_base_delay, interval '1 second') * 4
           AND a.recommended_base_delay <= interval '1 hour'
           AND a.recommended_multiplier BETWEEN 1 AND 4
           AND NOT EXISTS (SELECT 1 FROM taskguard.retry_policy_change c
                            WHERE c.task_name = a.task_name AND c.failure_type = a.failure_type
                              AND c.changed_at > now() - interval '24 hours')
         ORDER BY a.task_name, a.failure_type
    LOOP
        PERFORM taskguard._retry_apply(v_adv.task_name, v_adv.failure_type,
            v_adv.recommended_max_retries, v_adv.recommended_base_delay,
            v_adv.recommended_max_delay, v_adv.recommended_multiplier,
            'auto-tune: ' || v_adv.reason, true);
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;

-- Scheduler step 'retry_tune': nothing unless taskguard.retry_auto_tune is
-- on, then at most once an hour (metric_snapshot keeps the last run).
CREATE FUNCTION taskguard._retry_auto_tune()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF coalesce(current_setting('taskguard.retry_auto_tune', true), 'off') <> 'on'
       OR EXISTS (SELECT 1 FROM taskguard.metric_snapshot s
                   WHERE s.name = 'retry_tune_run' AND s.computed_at > now() - interval '1 hour') THEN
        RETURN 0;
    END IF;
    INSERT INTO taskguard.metric_snapshot AS s (name, value, computed_at)
    VALUES ('retry_tune_run', NULL, now())
    ON CONFLICT (name) DO UPDATE SET computed_at = EXCLUDED.computed_at;
    RETURN taskguard._retry_tune_apply();
END
$$;
