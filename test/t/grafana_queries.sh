#!/usr/bin/env bash
# Every panel query of dashboards/grafana/taskguard.json, with Grafana's
# macros and the dashboard's variables expanded to a fixed window, runs
# against this cluster — as the superuser and, when the access capability is
# there, as a role with reader access (what Grafana's data source gets).
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
json=dashboards/grafana/taskguard.json
out=$TG_WORK/grafana_queries.out

run_panels() {  # run_panels ROLE-OR-EMPTY: one line per query, title|ok|rows-or-error
    psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -d taskguard -v doc="$(cat "$json")" -v role="$1" <<'SQL'
CREATE FUNCTION pg_temp.grafana_expand(q text, vars jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    f text := '''2026-01-01T00:00:00Z''';
    t text := '''2026-01-02T00:00:00Z''';
    m text[];
    secs int;
    k text;
BEGIN
    -- $__timeGroup(col, '5m') / $__timeGroupAlias(col, '5m'): the bucket start
    LOOP
        m := regexp_match(q, '\$__timeGroup(Alias)?\(\s*([^,]+?)\s*,\s*''?(\d+)([smhd])''?\s*\)');
        EXIT WHEN m IS NULL;
        secs := m[3]::int * CASE m[4] WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END;
        q := regexp_replace(q, '\$__timeGroup(Alias)?\(\s*([^,]+?)\s*,\s*''?(\d+)([smhd])''?\s*\)',
                 format('to_timestamp(floor(extract(epoch FROM %s) / %s) * %s)%s', m[2], secs, secs,
                        CASE WHEN m[1] IS NOT NULL THEN ' AS "time"' ELSE '' END));
    END LOOP;
    q := regexp_replace(q, '\$__timeFilter\(([^)]*)\)', '\1 BETWEEN ' || f || ' AND ' || t, 'g');
    q := regexp_replace(q, '\$__unixEpochFilter\(([^)]*)\)',
             '\1 BETWEEN extract(epoch FROM timestamptz ' || f || ') AND extract(epoch FROM timestamptz ' || t || ')', 'g');
    q := regexp_replace(q, '\$__time\(([^)]*)\)', '\1 AS "time"', 'g');
    q := regexp_replace(q, '\$__timeFrom\(\)', f, 'g');
    q := regexp_replace(q, '\$__timeTo\(\)', t, 'g');
    q := regexp_replace(q, '\$__interval_ms', '60000', 'g');
    q := regexp_replace(q, '\$__interval', '1m', 'g');
    FOR k IN SELECT jsonb_object_keys(vars) LOOP
        q := replace(replace(q, '${' || k || '}', vars->>k), '$' || k, vars->>k);
    END LOOP;
    IF q ~ '\$' THEN
        RAISE EXCEPTION 'unexpanded macro or variable in: %', q;
    END IF;
    RETURN q;
END $$;
CREATE FUNCTION pg_temp.grafana_run(doc jsonb) RETURNS TABLE (title text, ok boolean, detail text)
LANGUAGE plpgsql AS $$
DECLARE
    vars jsonb;
    r record;
    n bigint;
BEGIN
    SELECT coalesce(jsonb_object_agg(v->>'name', v->'current'->>'value'), '{}') INTO vars
      FROM jsonb_array_elements(doc->'templating'->'list') v;
    FOR r IN
        SELECT p->>'title' AS title, tg->>'rawSql' AS q
          FROM jsonb_path_query(doc, '$.panels[*]') p0,
               LATERAL (SELECT p0 UNION ALL SELECT jsonb_array_elements(p0->'panels')) x(p),
               LATERAL jsonb_array_elements(coalesce(p->'targets', '[]')) tg
         WHERE tg ? 'rawSql'
    LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM (%s) q', pg_temp.grafana_expand(r.q, vars)) INTO n;
            title := r.title; ok := true; detail := n || ' rows';
        EXCEPTION WHEN OTHERS THEN
            title := r.title; ok := false; detail := SQLSTATE || ' ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END $$;
SELECT CASE WHEN :'role' <> '' THEN set_config('role', :'role', false) END;
SELECT replace(title, '|', '/'), ok, replace(detail, E'\n', ' ') FROM pg_temp.grafana_run(:'doc'::jsonb);
SQL
}

# some data, so that the queries return rows
q "SELECT taskguard.record_failure('grafana_probe', '{}', 'ConnectionError', 'connection refused')" >/dev/null

doc() {  # doc SQL: run SQL with :'doc' bound to the dashboard's JSON
    psql -X -At -d taskguard -v doc="$(cat "$json")" <<<"$1"
}
is "$(doc "SELECT jsonb_typeof(:'doc'::jsonb)")" object "the dashboard is valid JSON"
titles=$(doc "SELECT string_agg(p->>'title', ';') FROM jsonb_path_query(:'doc'::jsonb, '\$.panels[*] ? (@.type == \"row\")') p")
for section in Overview Idempotency "Schedule conflicts" "Dead-letter queue" "Failure taxonomy" "Retry policy" \
               "Retry advice"; do
    ok "$(grep -q "$section" <<<"$titles"; echo $?)" "the dashboard has a row for: $section"
done
is "$(doc "SELECT count(*) FROM jsonb_path_query(:'doc'::jsonb, 'strict \$.**.datasource.type') t WHERE t #>> '{}' <> 'postgres'")" 0 \
   "every panel uses the PostgreSQL data source"

run_panels "" >"$out" 2>&1 || { sed 's/^/# /' "$out"; }
n=0
while IFS='|' read -r title status detail; do
    [ -z "$title" ] && continue
    n=$((n + 1))
    ok "$([ "$status" = t ]; echo $?)" "panel \"$title\" runs ($detail)"
done <"$out"
ok "$([ "$n" -ge 20 ]; echo $?)" "$n panel queries found and run"

if [ "$(q "SELECT to_regprocedure('taskguard.grant_access(name,text)') IS NOT NULL")" = t ]; then
    q "DROP ROLE IF EXISTS tg_grafana_reader" >/dev/null
    q "CREATE ROLE tg_grafana_reader" >/dev/null
    q "SELECT taskguard.grant_access('tg_grafana_reader', 'reader')" >/dev/null
    run_panels tg_grafana_reader >"$out.reader" 2>&1 || { sed 's/^/# /' "$out.reader"; }
    bad=$(grep -c '|f|' "$out.reader")
    is "$bad" 0 "as a reader every panel query runs"
    grep '|f|' "$out.reader" | head -5 | sed 's/^/# /'
    q "DROP OWNED BY tg_grafana_reader" >/dev/null; q "DROP ROLE tg_grafana_reader" >/dev/null
fi
q "DELETE FROM taskguard.dead_letter WHERE task_name = 'grafana_probe'" >/dev/null
done_testing
