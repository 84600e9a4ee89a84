-- 95_comments.sql — a one-line summary on every public object, so that
-- \df+, \dv+, \dt+ and \dT+ say what each is; docs/reference.md says more.
-- Shipped whole to 0.1.0 databases by update piece 95_comments.include, so a
-- fresh install and an update carry the same comments (test/t/upgrade.sh);
-- test/pgtap/comments.sql fails when a public object has none.  Sorts after
-- every file that creates objects.  Keep each comment one line and in the
-- order of the sections of docs/reference.md.

-- types (docs/reference.md#types)
COMMENT ON TYPE taskguard.failure_type IS 'The fifteen failure types a failure is classified into.';
COMMENT ON TYPE taskguard.remediation IS 'What to do about a failure type.';
COMMENT ON TYPE taskguard.priority IS 'Task priority level, ordered DEFERRED < LOW < MEDIUM < HIGH < CRITICAL (scores 0-4).';
COMMENT ON TYPE taskguard.dlq_status IS 'Status of a dead-letter record: PENDING, RETRYING, RESOLVED or ABANDONED.';
COMMENT ON TYPE taskguard.alert_level IS 'Alert severity, ordered info < warning < error < critical.';
COMMENT ON TYPE taskguard.breaker_state IS 'Circuit breaker state: closed, open or half_open.';
COMMENT ON TYPE taskguard.classification IS 'Result of classify(): failure type, confidence, remediation, retryable, alert level and deciding rule.';
COMMENT ON TYPE taskguard.retry_decision IS 'Result of retry_decision(): whether to retry, after what delay, when, and why.';
COMMENT ON TYPE taskguard.failure_outcome IS 'Result of fail() and record_failure(): classification, action (retry or abandon), next retry and DLQ record id.';
COMMENT ON TYPE taskguard.priority_result IS 'Result of calculate_priority(): level, score, broker queue and the reasons that applied.';

-- queue (docs/reference.md#queue)
COMMENT ON TABLE taskguard.task IS 'The task queue: one row per task, ready, running, succeeded, failed or cancelled.';
COMMENT ON TABLE taskguard.task_ring_0 IS 'Partition 0 of the ring of taskguard.task (docs/storage.md): rows of time slots whose number is 0 modulo 4; read it through taskguard.task.';
COMMENT ON TABLE taskguard.task_ring_1 IS 'Partition 1 of the ring of taskguard.task (docs/storage.md): rows of time slots whose number is 1 modulo 4; read it through taskguard.task.';
COMMENT ON TABLE taskguard.task_ring_2 IS 'Partition 2 of the ring of taskguard.task (docs/storage.md): rows of time slots whose number is 2 modulo 4; read it through taskguard.task.';
COMMENT ON TABLE taskguard.task_ring_3 IS 'Partition 3 of the ring of taskguard.task (docs/storage.md): rows of time slots whose number is 3 modulo 4; read it through taskguard.task.';
COMMENT ON FUNCTION taskguard.enqueue(text, jsonb, text, timestamptz, taskguard.priority, text, text, text, text, integer, text, text, interval, interval) IS 'Add a task; returns its id (the existing task''s id for a repeated idempotency key).';
COMMENT ON FUNCTION taskguard.enqueue_many(text, jsonb[], text, timestamptz, taskguard.priority, text, text, text, text) IS 'Add one task per element of args; returns the ids in the order of args.';
COMMENT ON FUNCTION taskguard.claim(text, text, integer, interval) IS 'Hand up to batch due ready tasks of a queue to this caller only, highest priority first, under a lease.';
COMMENT ON FUNCTION taskguard.complete(bigint, jsonb, integer) IS 'Mark the caller''s running attempt succeeded; false when the task is not running or the attempt is not current.';
COMMENT ON FUNCTION taskguard.complete_many(bigint[], integer[]) IS 'complete() for many tasks in one call; returns how many were completed.';
COMMENT ON FUNCTION taskguard.fail(bigint, text, text, jsonb, integer) IS 'Report a failed attempt: classify it, then schedule a retry or dead-letter the task; NULL when not the current attempt.';
COMMENT ON FUNCTION taskguard.heartbeat(bigint, interval, integer) IS 'Extend the lease of the caller''s running attempt; false when it is no longer the caller''s.';
COMMENT ON FUNCTION taskguard.release(bigint, integer) IS 'Give back a claimed task whose handler has not started: ready again at once, the attempt not counted.';
COMMENT ON FUNCTION taskguard.cancel(bigint) IS 'Cancel a task that has not finished (its open dead-letter record is abandoned with it).';
COMMENT ON FUNCTION taskguard.requeue(bigint, taskguard.priority) IS 'Put a task that is not running back to ready now, optionally at a new priority.';

-- classification (docs/reference.md#classification)
COMMENT ON FUNCTION taskguard.classify(text, text, jsonb) IS 'Classify a failure from its error type, message and context (sqlstate, http_status, retry_count).';
COMMENT ON TABLE taskguard.classification_rule IS 'User classification rules, the strongest evidence: every non-NULL condition of a rule must hold.';

-- retry (docs/reference.md#retry, #retry-advice)
COMMENT ON FUNCTION taskguard.backoff(integer, interval, interval, double precision, text) IS 'Delay before retry number attempt: min(cap, base x multiplier^(attempt-1)) with none, full or equal jitter.';
COMMENT ON FUNCTION taskguard.retry_decision(taskguard.failure_type, integer, text, jsonb) IS 'Whether a failure with retry_count retries made gets another, and after what delay, per the retry policy.';
COMMENT ON TABLE taskguard.retry_policy IS 'Retry policy per failure type (task_name NULL) and optional per-task overrides.';
COMMENT ON FUNCTION taskguard.retry_simulate(text, taskguard.failure_type, integer, interval, interval, double precision, text, timestamptz) IS 'Replay recorded failures under a candidate retry policy: recovered, attempts spent and wasted, added delay.';
COMMENT ON FUNCTION taskguard.retry_apply_advice(text, taskguard.failure_type) IS 'Apply retry_advice''s recommendation as a per-task policy; returns the retry_policy_change id, NULL without advice.';
COMMENT ON VIEW taskguard.retry_outcomes IS 'How failures of the last 30 days ended, per task_name and failure type, and on which retry they recovered.';
COMMENT ON VIEW taskguard.retry_advice IS 'Per task_name and failure type: the current policy''s replayed figures, the best candidate''s, and why.';
COMMENT ON TABLE taskguard.retry_policy_change IS 'Every change retry_apply_advice or auto-tuning made to a retry policy: who, when, before and after.';

-- dead-letter queue (docs/reference.md#dlq)
COMMENT ON TABLE taskguard.dead_letter IS 'Dead-letter records: one per failing task, or per (tenant, task_ref) in external-broker mode.';
COMMENT ON TABLE taskguard.failure_event IS 'One row per failed attempt, for trends; pruned after taskguard.event_retention.';
COMMENT ON VIEW taskguard.dlq IS 'The dead-letter queue as operators and dashboards read it (also the plain CSV export).';
COMMENT ON FUNCTION taskguard.record_failure(text, jsonb, text, text, jsonb, text, text) IS 'External-broker mode: record a failure of a task taskguard did not run; the same task_ref updates the same record.';
COMMENT ON FUNCTION taskguard.claim_due_retries(integer) IS 'External-broker mode: hand due PENDING records, now RETRYING, to the application''s dispatcher.';
COMMENT ON FUNCTION taskguard.resolve(bigint, text) IS 'Mark one dead-letter record RESOLVED.';
COMMENT ON FUNCTION taskguard.dlq_retry(bigint[], taskguard.priority, interval) IS 'Retry PENDING and ABANDONED records now, or staggered over spread; returns how many changed.';
COMMENT ON FUNCTION taskguard.dlq_abandon(bigint[], text) IS 'Give up on open dead-letter records; returns how many changed.';
COMMENT ON FUNCTION taskguard.dlq_resolve(bigint[], text) IS 'Mark open dead-letter records RESOLVED; returns how many changed.';
COMMENT ON FUNCTION taskguard.dlq_purge(interval, taskguard.dlq_status[]) IS 'Delete records in the given statuses older than older_than (their waiting tasks are cancelled); returns how many.';
COMMENT ON FUNCTION taskguard.dlq_csv_safe(text) IS 'A text made inert for a spreadsheet cell (a leading =, +, -, @, tab or CR gets a quote).';
COMMENT ON VIEW taskguard.dlq_export IS 'taskguard.dlq with every free-text column made spreadsheet-safe, for COPY ... TO STDOUT WITH CSV HEADER.';

-- idempotency (docs/reference.md#idempotency)
COMMENT ON FUNCTION taskguard.idempotency_key(text, jsonb) IS 'Stable key of a task: lowercase hex SHA-256 of task_name, chr(31) and args::text.';
COMMENT ON FUNCTION taskguard.idempotency_check(text, interval, text) IS 'True the first time a key is seen within its TTL (go ahead), false for a duplicate; per tenant, transactional.';
COMMENT ON FUNCTION taskguard.idempotency_release(text) IS 'Forget a key of the caller''s tenant now; true when a live key was removed.';
COMMENT ON TABLE taskguard.idempotency_record IS 'Live idempotency keys per tenant, until they expire.';
COMMENT ON TABLE taskguard.idempotency_counter IS 'Idempotency check and duplicate counts per tenant and task_name, flushed from shared memory.';
COMMENT ON VIEW taskguard.idempotency_stats IS 'Idempotency checks, duplicates and hit rate per task_name: flushed totals plus live counts.';

-- circuit breakers (docs/reference.md#breakers)
COMMENT ON FUNCTION taskguard.breaker_allow(text) IS 'May a call to this service go ahead now? Takes a probe when half-open (needs shared_preload_libraries).';
COMMENT ON FUNCTION taskguard.breaker_record(text, boolean) IS 'Record the outcome of a call to a service; returns the breaker state after it.';
COMMENT ON FUNCTION taskguard.breaker_reset(text) IS 'Close a breaker and clear its counts (an admin action).';
COMMENT ON FUNCTION taskguard.breaker_force(text, text) IS 'Force a breaker open, disable it (always allow), or return it to auto (an admin action).';
COMMENT ON TABLE taskguard.breaker_config IS 'Breaker settings per service; ''*'' is the default row.';
COMMENT ON TABLE taskguard.breaker_saved IS 'Saved breaker state, so that a restart keeps open breakers open.';
COMMENT ON VIEW taskguard.breaker_status IS 'Every breaker: live shared-memory state merged with the saved rows.';

-- priority (docs/reference.md#priority)
COMMENT ON FUNCTION taskguard.calculate_priority(text, jsonb) IS 'Priority of a task: base + tier bonus + aging + SLA pressure + failure urgency, clamped to 0-4, with reasons.';
COMMENT ON FUNCTION taskguard.priority_level(real) IS 'The priority level of a score (>= 3.5 CRITICAL, >= 2.5 HIGH, >= 1.5 MEDIUM, >= 0.5 LOW).';
COMMENT ON TABLE taskguard.task_config IS 'Per task_name configuration: base priority, queue, max_attempts, service.';
COMMENT ON TABLE taskguard.customer_tier IS 'Customer tiers: SLA and priority bonus.';
COMMENT ON TABLE taskguard.priority_queue IS 'The broker queue an external dispatcher should use for each priority level.';
COMMENT ON TABLE taskguard.task_escalation IS 'What the scheduler''s escalation step last did to a waiting task''s score.';

-- schedules (docs/reference.md#schedule)
COMMENT ON FUNCTION taskguard.cron_next(text, timestamptz) IS 'The first occurrence of a cron expression strictly after a time, in UTC.';
COMMENT ON FUNCTION taskguard.cron_occurrences(text, timestamptz, timestamptz) IS 'Every occurrence t of a cron expression with from_ts <= t < to_ts, in UTC.';
COMMENT ON FUNCTION taskguard.schedule_load(interval, interval, integer) IS 'Jobs starting and running per bucket of the coming horizon, with utilization and hotspots.';
COMMENT ON FUNCTION taskguard.schedule_health() IS 'Schedule health score 0-100 with counts of hotspots, duplicates, overlaps and invalid schedules.';
COMMENT ON FUNCTION taskguard.schedule_suggestions() IS 'Moves of jobs within the hour, keeping their period, that lower the peak load.';
COMMENT ON FUNCTION taskguard.validate_schedules(boolean) IS 'Schedule problems: invalid, duplicate or overlap, with detail.';
COMMENT ON TABLE taskguard.schedule IS 'Scheduled jobs besides pg_cron''s cron.job, with expected durations.';
COMMENT ON VIEW taskguard.schedule_hotspots IS 'Hot one-minute buckets of the next 24 hours with the jobs running in each.';

-- scheduler (docs/reference.md#scheduler)
COMMENT ON FUNCTION taskguard.tick() IS 'Run one scheduler pass in this session; returns the rows each step handled.';
COMMENT ON VIEW taskguard.scheduler_status IS 'The background scheduler: pid, last pass, its duration and counts, last error.';

-- flow control (docs/reference.md#flow-control)
COMMENT ON TABLE taskguard.flow_limit IS 'Caps, rates and fair-share weights per queue, task_name, service, tenant or flow_key, enforced in claim().';
COMMENT ON TABLE taskguard.flow_pause IS 'Paused queues and task types (written by pause() and resume()).';
COMMENT ON FUNCTION taskguard.pause(text, text) IS 'Pause a queue or one task type in it: claim() hands none out until resume(); true if it was not paused.';
COMMENT ON FUNCTION taskguard.resume(text, text) IS 'Resume what pause() paused; true if it was paused.';
COMMENT ON VIEW taskguard.flow_status IS 'Per flow limit and value: running against the cap, tokens, waiting tasks, and whether it holds them back.';
COMMENT ON VIEW taskguard.flow_paused IS 'Paused queues and task types, with the ready tasks they keep waiting.';

-- access and tenants (docs/reference.md#tenants)
COMMENT ON FUNCTION taskguard.grant_access(name, text) IS 'Grant a role the worker, reader or admin access level.';
COMMENT ON FUNCTION taskguard.revoke_access(name, text) IS 'Take back the privileges grant_access(role, access) gave.';
COMMENT ON TABLE taskguard.tenant_member IS 'Which tenants a role acts for (row-level tenant isolation).';
COMMENT ON TABLE taskguard.tenant_bound_role IS 'Every role ever mapped to a tenant, so that removing its last mapping narrows what it sees to nothing.';

-- observability (docs/reference.md#observability, #prometheus, #vacuum-blockers)
COMMENT ON VIEW taskguard.dashboard IS 'One-row overview: running, ready, DLQ depth, failures, open breakers, schedule health, health score.';
COMMENT ON FUNCTION taskguard.health_score(bigint, bigint, integer, integer, numeric, numeric) IS 'The dashboard''s health score 0-100: 100 minus weighted penalties.';
COMMENT ON VIEW taskguard.failure_distribution IS 'Per failure type: records, open records, share, average confidence and recent failures.';
COMMENT ON VIEW taskguard.failure_trend IS 'Failed attempts per hour and failure type (time column for Grafana).';
COMMENT ON VIEW taskguard.classification_confidence IS 'Failed attempts of the last 24 hours by hour, failure type and confidence band (heatmap data).';
COMMENT ON VIEW taskguard.retry_effectiveness IS 'Per failure type: records recovered or exhausted by retries, success rate, retries taken.';
COMMENT ON VIEW taskguard.alerts IS 'Each alert that is on, at its most severe breached level.';
COMMENT ON TABLE taskguard.alert_threshold IS 'Alert thresholds per alert and level (built-in rows may be edited).';
COMMENT ON TABLE taskguard.alert_state IS 'Alerts that are on, so that each start is announced once on NOTIFY taskguard_alerts.';
COMMENT ON TABLE taskguard.metric_snapshot IS 'Values the scheduler computes each pass for the views (e.g. schedule health).';
COMMENT ON TABLE taskguard.dlq_rollup IS 'Dead-letter records counted by tenant, status and failure type, for the views.';
COMMENT ON TABLE taskguard.dlq_delta IS 'Changes to dead-letter counts not yet folded into dlq_rollup.';
COMMENT ON TABLE taskguard.failure_hourly IS 'Failed attempts per hour, tenant and failure type; pruned with taskguard.event_retention.';
COMMENT ON TABLE taskguard.activity_minute IS 'Failed attempts and abandoned records per minute and tenant; kept 25 hours.';
COMMENT ON TABLE taskguard.failure_total IS 'Monotonic failure, retry and abandon totals for the Prometheus counters; never pruned.';
COMMENT ON TABLE taskguard.event_delta IS 'Failure events appended by triggers, not yet folded into the rollups.';
COMMENT ON TABLE taskguard.metric_tenant IS 'Every tenant the rollups have seen.';
COMMENT ON FUNCTION taskguard.rollup_rebuild() IS 'Recompute the rollups from dead_letter and failure_event; returns the number of dlq_rollup rows.';
COMMENT ON FUNCTION taskguard.prometheus_metrics() IS 'All metrics in the Prometheus exposition format (counters never go down).';
COMMENT ON VIEW taskguard.vacuum_blockers IS 'Sessions, prepared transactions and slots holding back vacuum of taskguard''s tables, oldest first.';

-- console (docs/reference.md#console)
COMMENT ON FUNCTION taskguard.dlq_purge_records(bigint[]) IS 'Delete the given dead-letter records whatever their status (their waiting tasks are cancelled); returns how many.';
