#!/usr/bin/env bash
# cron_agreement.sh — the schedule analysis accepts what the installed pg_cron
# accepts.  Every expression of sql/cron.sql and test/unit/cron_test.c (valid
# and invalid) goes through cron.schedule() + cron.unschedule() in database
# taskguard (where pg_cron runs) and through taskguard's validation (an
# INSERT into taskguard.schedule), all in one transaction that is rolled
# back.  The verdicts must agree, except for a pinned list of texts pg_cron
# stores but reads as something else than written (it ignores what follows a
# value, and stores reversed ranges as "never"): taskguard refuses those
# (docs/reference.md#schedule) and the analysis reports such a pg_cron job as invalid.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
out=$TG_WORK/cron_agreement
mkdir -p "$out"

# The cases, as SQL literals (E'' with escapes for tabs and control bytes).
python3 - sql/cron.sql test/unit/cron_test.c >"$out/cases.sql" <<'PY'
import re, sys
def lit(s):   # non-ASCII stays UTF-8; control bytes become \xNN
    return "E'" + ''.join(c if ord(c) >= 32 and ord(c) != 127 and c not in "'\\" else
                          ("\\\\" if c == "\\" else "''" if c == "'" else "\\x%02x" % ord(c))
                          for c in s) + "'"
seen, rows = set(), []
def add(s, src):
    if s not in seen:
        seen.add(s); rows.append((s, src))
sql = open(sys.argv[1]).read()
for m in re.finditer(r"^\s*\('((?:[^']|'')*)'", sql, re.M):      # ('expr', ... rows of VALUES
    add(m.group(1).replace("''", "'"), 'sql/cron.sql')
for line in re.findall(r"^FROM \(VALUES .*$", sql, re.M):        # FROM (VALUES ('a'), ('b')) v(expr)
    for m in re.finditer(r"\('((?:[^']|'')*)'\)", line):
        add(m.group(1).replace("''", "'"), 'sql/cron.sql')
c = open(sys.argv[2]).read()
def cstr(body):   # a C string literal's body: escapes decoded, UTF-8 kept
    import codecs
    return codecs.escape_decode(body.encode())[0].decode('utf-8', 'replace')
for m in re.finditer(r'^\s*\{"((?:[^"\\]|\\.)*)"', c, re.M):     # {"expr", ... table rows
    add(cstr(m.group(1)), 'cron_test.c')
for m in re.finditer(r'(?:never|fires)\[\] = \{([^}]*)\}', c):     # TestNeverFires lists
    for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)):
        add(cstr(s), 'cron_test.c')
print("INSERT INTO agree_case (n, expr, src) VALUES")
print(",\n".join("(%d, %s, '%s')" % (i + 1, lit(s), src) for i, (s, src) in enumerate(rows)) + ";")
PY
ncases=$(grep -c "^(" "$out/cases.sql")
ok "$([ "$ncases" -ge 90 ] && echo 0 || echo 1)" "$ncases distinct expressions from sql/cron.sql and test/unit/cron_test.c"

# Texts pg_cron stores although it does not run them as written.
known="* * * * * *|* * * * * # comment|@daily extra|10-5 * * * *|* * * * fri-mon|1.5 * * * *|0 12 * * 1#2|* * * * *\x01"

psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -d taskguard >"$out/verdicts.txt" 2>"$out/psql.err" <<SQL
BEGIN;
CREATE TEMP TABLE agree_case (n int, expr text, src text);
$(cat "$out/cases.sql")
CREATE FUNCTION pg_temp.pg_cron_accepts(e text) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM cron.schedule('tgagree_probe', e, 'SELECT 1');
    PERFORM cron.unschedule('tgagree_probe');
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END \$\$;
CREATE FUNCTION pg_temp.taskguard_accepts(e text) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('tgagree_probe', e, 'SELECT 1');
    DELETE FROM taskguard.schedule WHERE name = 'tgagree_probe';
    RETURN NULL;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN SQLERRM;
END \$\$;
SELECT 'V', n, pg_temp.pg_cron_accepts(expr) IS NULL, pg_temp.taskguard_accepts(expr) IS NULL,
       replace(replace(expr, E'\n', '\\n'), E'\x01', '\\x01'), src
  FROM agree_case ORDER BY n;
-- the pinned differences, stored as pg_cron jobs: the analysis reports each
SELECT 'S', count(cron.schedule('tgagree_' || n, expr, 'SELECT ' || n))
  FROM agree_case WHERE replace(expr, E'\x01', '\\x01') = ANY (string_to_array('$known', '|'));
SELECT 'R', count(*) FROM taskguard.validate_schedules()
 WHERE job LIKE 'cron:tgagree\_%' AND problem = 'invalid';
-- a schedule that never fires: accepted by both, reported by the analysis
SELECT 'N', count(cron.schedule('tgagree_never', '0 0 31 2 *', 'SELECT 0'));
SELECT 'D', detail FROM taskguard.validate_schedules() WHERE job = 'cron:tgagree_never';
SELECT 'X', taskguard.cron_next('0 0 31 2 *') IS NULL,
       (SELECT count(*) FROM taskguard.cron_occurrences('0 0 31 2 *', '2000-01-01', '2400-01-01'));
ROLLBACK;
SQL
ok $? "the verdicts were computed"
[ -s "$out/psql.err" ] && head -5 "$out/psql.err" | sed 's/^/# /'

pgver=$(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
agree=0; differ=0; unexpected=""
while IFS='|' read -r tag n pg tg expr src; do
    [ "$tag" = V ] || continue
    if [ "$pg" = "$tg" ]; then
        agree=$((agree + 1))
    elif [ "$pg" = t ] && [ "$tg" = f ] && printf '%s\n' "$known" | tr '|' '\n' | grep -qxF -- "$expr"; then
        differ=$((differ + 1))
    else
        unexpected="$unexpected [$expr] (pg_cron $pg, taskguard $tg, $src)"
    fi
done <"$out/verdicts.txt"
nknown=$(printf '%s\n' "$known" | tr '|' '\n' | wc -l)
is "$unexpected" "" "taskguard's validation agrees with pg_cron $pgver on $agree expressions"
is "$differ" "$nknown" "the $nknown pinned texts that pg_cron $pgver stores but misreads are refused by taskguard"
is "$(grep '^S|' "$out/verdicts.txt" | cut -d'|' -f2)|$(grep '^R|' "$out/verdicts.txt" | cut -d'|' -f2)" "$nknown|$nknown" \
   "stored as pg_cron jobs, each of them is reported invalid by validate_schedules"
is "$(grep '^D|' "$out/verdicts.txt" | cut -d'|' -f2)" \
   'day of month field "31": no such day in month field "2", so the schedule never fires (pg_cron accepts it and never runs it)' \
   "'0 0 31 2 *': pg_cron accepts it, and the analysis reports that it never fires"
is "$(grep '^X|' "$out/verdicts.txt" | cut -d'|' -f2-)" "t|0" "cron_next and cron_occurrences: no occurrence in 400 years"

# The 'N seconds' form follows the installed pg_cron's version: refused under
# 1.4, accepted under 1.5 and later and without pg_cron.
ins="INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('tgagree_s', '30 seconds', 'SELECT 1')"
verdict() {  # verdict SETUP-SQL: ok or the error
    psql -X -q -At -d taskguard 2>&1 <<SQL | grep -E '^(ok|ERROR)' | head -1
BEGIN;
$1
$ins RETURNING 'ok';
ROLLBACK;
SQL
}
case "$pgver" in
1.[0-4]*) is "$(verdict "")" 'ERROR:  invalid schedule for job "tgagree_s": seconds field "30 seconds": the installed pg_cron 1.4 does not accept intervals in seconds (pg_cron 1.5 and later do)' \
             "pg_cron $pgver: '30 seconds' is refused, naming the version" ;;
*)        is "$(verdict "")" ok "pg_cron $pgver: '30 seconds' is accepted" ;;
esac
is "$(verdict "UPDATE pg_extension SET extversion = '1.5' WHERE extname = 'pg_cron';")" ok \
   "with pg_cron 1.5 recorded as installed, '30 seconds' is accepted"
is "$(verdict "DROP EXTENSION pg_cron;")" ok "without pg_cron, '30 seconds' is accepted"
is "$(q "SELECT taskguard.cron_next('30 seconds', '2026-01-01 00:00:10+00') AT TIME ZONE 'UTC'")" "2026-01-01 00:00:30" \
   "cron_next evaluates the seconds form whatever pg_cron is installed"
done_testing
