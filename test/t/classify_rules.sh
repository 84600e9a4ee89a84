#!/usr/bin/env bash
# classify_rules: a classification rule or policy committed in one session is
# used by another, already connected session at its next statement (the cache
# is invalidated, not re-read per call, and no reconnect is needed).
. "$(dirname "$0")/../lib/tap.sh"

q "DELETE FROM taskguard.classification_rule WHERE description = 'classify_rules.sh'" >/dev/null

# One long-lived session; the changes are made by other sessions via \!.
out=$(psql -X -At -v ON_ERROR_STOP=1 -d taskguard <<'SQL'
SELECT 'pid1=' || pg_backend_pid();
SELECT 'before=' || (taskguard.classify('acme.FlakyVendorError', 'vendor said no')).rule;
SELECT 'policy_before=' || (taskguard.classify('ConnectionError')).alert_level;
\! psql -X -q -d taskguard -c "INSERT INTO taskguard.classification_rule (error_type_pattern, message_pattern, failure_type, confidence, description) VALUES ('FlakyVendor%', 'said\s+no', 'EXTERNAL_SERVICE_UNAVAILABLE', 0.9, 'classify_rules.sh')"
\! psql -X -q -d taskguard -c "UPDATE taskguard.retry_policy SET alert_level = 'critical' WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name IS NULL"
SELECT 'pid2=' || pg_backend_pid();
SELECT 'after=' || (taskguard.classify('acme.FlakyVendorError', 'vendor said no')).failure_type;
SELECT 'policy_after=' || (taskguard.classify('ConnectionError')).alert_level;
\! psql -X -q -d taskguard -c "DELETE FROM taskguard.classification_rule WHERE description = 'classify_rules.sh'"
\! psql -X -q -d taskguard -c "UPDATE taskguard.retry_policy SET alert_level = 'warning' WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name IS NULL"
SELECT 'deleted=' || (taskguard.classify('acme.FlakyVendorError', 'vendor said no')).rule;
SELECT 'policy_restored=' || (taskguard.classify('ConnectionError')).alert_level;
SQL
)
val() { printf '%s\n' "$out" | sed -n "s/^$1=//p"; }

is "$(val pid1)" "$(val pid2)" "the same backend throughout"
is "$(val before)" "default" "no rule yet: UNKNOWN by default"
is "$(val after)" "EXTERNAL_SERVICE_UNAVAILABLE" "a rule inserted by another session applies without reconnecting"
is "$(val policy_before)" "warning" "default alert level"
is "$(val policy_after)" "critical" "a policy edit by another session applies without reconnecting"
is "$(val deleted)" "default" "a rule deleted by another session stops applying"
is "$(val policy_restored)" "warning" "policy restored"

# an uncommitted rule is not seen by others
out=$(psql -X -At -d taskguard <<'SQL'
BEGIN;
INSERT INTO taskguard.classification_rule (error_type_pattern, failure_type, description)
VALUES ('UncommittedThing', 'SYSTEM_DISK_FULL', 'classify_rules.sh');
\! psql -X -At -d taskguard -c "SELECT 'other=' || (taskguard.classify('UncommittedThing')).failure_type"
SELECT 'self=' || (taskguard.classify('UncommittedThing')).failure_type;
ROLLBACK;
SELECT 'rolled_back=' || (taskguard.classify('UncommittedThing')).failure_type;
SQL
)
is "$(val other)" "UNKNOWN" "another session does not see an uncommitted rule"
is "$(val self)" "SYSTEM_DISK_FULL" "the inserting transaction sees its own rule"
is "$(val rolled_back)" "UNKNOWN" "a rolled-back rule is gone"

done_testing
