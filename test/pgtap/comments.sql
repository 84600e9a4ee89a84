-- comments.sql — every public object of the extension has a one-line comment
-- (issue 21; src/sql/95_comments.sql), so \df+, \dv+, \dt+ and \dT+ say what
-- it is, and an object added later without one fails here.  Objects whose
-- name starts with `_` are internal and left out.
BEGIN;
SELECT plan(5);

SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'taskguard'::regnamespace AND p.proname !~ '^_'
                   AND obj_description(p.oid, 'pg_proc') IS NULL ORDER BY 1),
          '{}'::text[], 'every public function has a comment');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relname !~ '^_'
                   AND c.relkind IN ('r', 'p', 'v', 'm')
                   AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1),
          '{}'::text[], 'every public table and view has a comment');
SELECT is(ARRAY(SELECT t.typname::text FROM pg_type t
                 WHERE t.typnamespace = 'taskguard'::regnamespace AND t.typname !~ '^_'
                   AND (t.typtype IN ('e', 'd')
                        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
                   AND obj_description(t.oid, 'pg_type') IS NULL ORDER BY 1),
          '{}'::text[], 'every public enum, domain and composite type has a comment');
-- one line each, and a sentence (not a placeholder)
SELECT is(ARRAY(SELECT d.description FROM pg_description d
                  JOIN pg_depend e ON e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e'
                   AND e.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'taskguard')
                 WHERE d.objsubid = 0 AND (d.description ~ '\n' OR length(d.description) < 15
                       OR length(d.description) > 200) ORDER BY 1),
          '{}'::text[], 'every comment is one line of 15 to 200 characters');
SELECT cmp_ok((SELECT count(*) FROM pg_description d
                 JOIN pg_depend e ON e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e'
                  AND e.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'taskguard')
                WHERE d.objsubid = 0), '>=', 100::bigint, 'at least 100 objects carry a comment');

SELECT * FROM finish();
ROLLBACK;
