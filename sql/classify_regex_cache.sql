-- classify: user rules' compiled message patterns live in the per-backend
-- cache across statements and are freed when a rule change reloads it.
-- Since PostgreSQL 16 the regex library allocates in the current memory
-- context; a pattern compiled in a short-lived one crashed the backend here
-- ("pfree called with invalid pointer", then SIGSEGV) on the second call.
\set VERBOSITY terse
INSERT INTO taskguard.classification_rule (priority, message_pattern, failure_type, description)
VALUES (10, 'card.*declined', 'BUSINESS_LOGIC_VIOLATION', 'regex cache 1') RETURNING id AS r1 \gset
INSERT INTO taskguard.classification_rule (priority, message_pattern, failure_type, description)
VALUES (20, '^quota (for|of) [a-z]+ (used up|exhausted)$', 'TRANSIENT_RATE_LIMIT', 'regex cache 2') RETURNING id AS r2 \gset
-- the first call loads the cache; later statements use the compiled patterns
SELECT failure_type, rule = 'user:' || :r1 AS by_r1 FROM taskguard.classify(NULL, 'Card was DECLINED');
SELECT failure_type, rule = 'user:' || :r2 AS by_r2 FROM taskguard.classify(NULL, 'Quota for uploads exhausted');
-- memory churn between statements, so freed memory would be reused
SELECT count(DISTINCT md5(repeat(g::text, 200))) AS churn FROM generate_series(1, 20000) g;
-- many calls, each rule deciding some, in one statement and again in the next
SELECT rule = 'user:' || :r1 AS by_r1, rule = 'user:' || :r2 AS by_r2, count(*)
  FROM generate_series(1, 300) g,
       taskguard.classify(NULL, CASE g % 3 WHEN 0 THEN 'card ' || g || ' declined'
                                           WHEN 1 THEN 'quota for job' || repeat('s', g % 5 + 1) || ' used up'
                                           ELSE 'nothing to see ' || g END) c
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rule = 'user:' || :r1 AS by_r1, rule = 'user:' || :r2 AS by_r2, count(*)
  FROM generate_series(1, 300) g,
       taskguard.classify(NULL, CASE g % 3 WHEN 0 THEN 'card ' || g || ' declined'
                                           WHEN 1 THEN 'quota for job' || repeat('s', g % 5 + 1) || ' used up'
                                           ELSE 'nothing to see ' || g END) c
 GROUP BY 1, 2 ORDER BY 1, 2;
-- a rule change: the cache frees the old patterns and compiles the new ones
UPDATE taskguard.classification_rule SET message_pattern = 'payment.*refused' WHERE id = :r1;
SELECT count(DISTINCT md5(repeat(g::text, 200))) AS churn FROM generate_series(1, 20000) g;
SELECT failure_type, rule = 'user:' || :r1 AS by_r1 FROM taskguard.classify(NULL, 'Payment was REFUSED');
SELECT failure_type, rule FROM taskguard.classify(NULL, 'card declined');
SELECT failure_type, rule = 'user:' || :r2 AS by_r2 FROM taskguard.classify(NULL, 'quota of cpu used up');
-- a change inside a transaction that rolls back: reloaded twice, no leftovers
BEGIN;
DELETE FROM taskguard.classification_rule WHERE id = :r2;
SELECT failure_type, rule FROM taskguard.classify(NULL, 'quota of cpu used up');
ROLLBACK;
SELECT failure_type, rule = 'user:' || :r2 AS by_r2 FROM taskguard.classify(NULL, 'quota of cpu used up');
-- rules gone: the cache is empty again and classification falls back to the built-in layers
DELETE FROM taskguard.classification_rule WHERE id IN (:r1, :r2);
SELECT failure_type, rule FROM taskguard.classify(NULL, 'Payment was REFUSED');
SELECT failure_type, rule FROM taskguard.classify(NULL, 'Quota for uploads exhausted');
