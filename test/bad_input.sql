-- test/bad_input.sql — table-driven bad input for every public taskguard function.
-- For each function and each argument, the argument is replaced by each bad value
-- of its type while the others keep a plausible value; every call must either
-- return or fail with a clean SQLSTATE (class XX, internal error, is a failure).
-- Results land in bad_input_result for the shell test to judge.
SET client_min_messages = warning;
DROP TABLE IF EXISTS bad_input_result;
CREATE TABLE bad_input_result (fn text, call text, sqlstate text, message text, ms numeric);

CREATE OR REPLACE FUNCTION pg_temp.sample(fn text, arg text, typ regtype) RETURNS text
LANGUAGE sql AS $$
SELECT CASE
    WHEN arg IN ('expr', 'schedule') THEN quote_literal('*/5 * * * *')
    WHEN arg = 'jitter' THEN quote_literal('full')
    WHEN arg = 'mode' THEN quote_literal('auto')
    WHEN arg = 'access' THEN quote_literal('reader')
    WHEN arg = 'error_type' THEN quote_literal('ValueError')
    WHEN arg = 'role' THEN quote_literal('postgres')
    WHEN typ = 'text'::regtype THEN quote_literal('x')
    WHEN typ IN ('integer'::regtype, 'bigint'::regtype) THEN '1'
    WHEN typ IN ('real'::regtype, 'double precision'::regtype) THEN '2.0'
    WHEN typ = 'boolean'::regtype THEN 'true'
    WHEN typ = 'interval'::regtype THEN quote_literal('1 hour') || '::interval'
    WHEN typ = 'timestamptz'::regtype AND arg LIKE 'to%' THEN 'now() + interval ''1 hour'''
    WHEN typ = 'timestamptz'::regtype THEN 'now()'
    WHEN typ = 'jsonb'::regtype THEN quote_literal('{}') || '::jsonb'
    WHEN typ = 'name'::regtype THEN quote_literal('postgres') || '::name'
    WHEN typ = 'jsonb[]'::regtype THEN quote_literal('{"{}"}') || '::jsonb[]'
    WHEN typ::text LIKE '%[]' AND typ::text LIKE 'taskguard.%' THEN 'NULL::' || typ::text
    WHEN typ::text LIKE '%[]' THEN quote_literal('{1}') || '::' || typ::text
    WHEN typ::text LIKE 'taskguard.%' THEN 'enum_first(NULL::' || typ::text || ')'
    ELSE 'NULL::' || typ::text END
$$;

CREATE OR REPLACE FUNCTION pg_temp.bad_values(typ regtype) RETURNS SETOF text
LANGUAGE sql AS $$
SELECT v FROM (VALUES
    ('text', 'NULL::text'), ('text', quote_literal('')), ('text', 'repeat(''x'', 10485760)'),
    ('text', quote_literal(E'\u00e9\t\n''";--')),
    ('integer', 'NULL::int'), ('integer', '-1'), ('integer', '0'), ('integer', '2147483647'),
    ('integer', '(-2147483648)::int'),
    ('bigint', 'NULL::bigint'), ('bigint', '-1'), ('bigint', '0'), ('bigint', '9223372036854775807'),
    ('real', 'NULL::real'), ('real', '''NaN''::real'), ('real', '''Infinity''::real'), ('real', '-1e30'),
    ('double precision', 'NULL::float8'), ('double precision', '''NaN''::float8'),
    ('double precision', '''-Infinity''::float8'), ('double precision', '1e308'),
    ('boolean', 'NULL::boolean'),
    ('interval', 'NULL::interval'), ('interval', '''-1 day''::interval'), ('interval', '''0''::interval'),
    ('interval', '''178000000 years''::interval'),
    ('timestamp with time zone', 'NULL::timestamptz'), ('timestamp with time zone', '''infinity''::timestamptz'),
    ('timestamp with time zone', '''-infinity''::timestamptz'),
    ('jsonb', 'NULL::jsonb'), ('jsonb', '''[]''::jsonb'), ('jsonb', '''"s"''::jsonb'),
    ('jsonb', '''null''::jsonb'), ('jsonb', '''{"retry_count": -5, "http_status": "abc", "sqlstate": 42, "retry_after_seconds": 1e300}''::jsonb'),
    ('jsonb', 'jsonb_build_object(''k'', repeat(''x'', 10485760))'),
    ('name', 'NULL::name'), ('name', '''''::name'), ('name', '''no_such_role''::name'),
    ('bigint[]', 'NULL::bigint[]'), ('bigint[]', '''{}''::bigint[]'), ('bigint[]', '''{NULL}''::bigint[]'),
    ('bigint[]', '(SELECT array_agg(g) FROM generate_series(1, 100000) g)'),
    ('integer[]', 'NULL::int[]'), ('integer[]', '''{}''::int[]'), ('integer[]', '''{NULL,-1}''::int[]'),
    ('jsonb[]', 'NULL::jsonb[]'), ('jsonb[]', '''{}''::jsonb[]'), ('jsonb[]', '''{NULL}''::jsonb[]')
) AS t(ty, v) WHERE ty = format_type(typ, NULL)
UNION ALL
SELECT v FROM (VALUES ('NULL'), ('''NOT_A_VALUE''')) AS e(v)
 WHERE format_type(typ, NULL) LIKE 'taskguard.%' AND format_type(typ, NULL) NOT LIKE '%[]'
UNION ALL
SELECT v FROM (VALUES ('NULL'), ('''{}'''), ('''{NOT_A_VALUE}''')) AS e(v)
 WHERE format_type(typ, NULL) LIKE 'taskguard.%[]'
$$;

DO $$
DECLARE
    f      record;
    i      int;
    j      int;
    bad    text;
    args   text[];
    call   text;
    st     text;
    msg    text;
    t0     timestamptz;
BEGIN
    FOR f IN
        SELECT p.proname, p.pronargs, p.proargtypes::regtype[] AS types,
               coalesce(p.proargnames, '{}') AS names
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'taskguard' AND p.proname NOT LIKE '\_%' AND p.prokind = 'f'
         ORDER BY p.proname, p.oid
    LOOP
        FOR i IN 0 .. f.pronargs - 1 LOOP
            FOR bad IN SELECT pg_temp.bad_values(f.types[i]) LOOP
                args := '{}';
                FOR j IN 0 .. f.pronargs - 1 LOOP
                    args := args || CASE WHEN j = i THEN bad
                                         ELSE pg_temp.sample(f.proname, f.names[j + 1], f.types[j]) END;
                END LOOP;
                call := format('SELECT count(*) FROM (SELECT * FROM taskguard.%I(%s)) s',
                               f.proname, array_to_string(args, ', '));
                t0 := clock_timestamp();
                BEGIN
                    EXECUTE call;
                    st := '00000'; msg := NULL;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                END;
                INSERT INTO bad_input_result VALUES (f.proname, left(call, 300), st, left(msg, 300),
                    extract(epoch FROM clock_timestamp() - t0) * 1000);
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;
