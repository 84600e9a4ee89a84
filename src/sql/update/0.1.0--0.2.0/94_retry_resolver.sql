-- 94_retry_resolver.sql (issue 21): one resolver of taskguard.retry_policy
-- for C and SQL.  0.1.0's _policy_max_retries read the table itself and gave
-- 0 for a type whose default row was deleted, where the decision (C) used the
-- built-in policy: dead_letter.max_retries could contradict the retry taken.
-- Now it asks retry.c's resolver, as classify(), retry_decision() and
-- calculate_priority() do.
CREATE OR REPLACE FUNCTION taskguard._policy_max_retries(failure_type taskguard.failure_type, task_name text)
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_policy_max_retries'
LANGUAGE C STABLE PARALLEL SAFE;
