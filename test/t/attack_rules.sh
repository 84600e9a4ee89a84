#!/usr/bin/env bash
# Issue 16 class 5: denial of service through text.  A classification rule
# whose compile or match time can explode is refused when it is written
# (invalid_parameter_value naming message_pattern): over 1000 bytes, over 2000
# atoms with every {m,n} written out, or with back-references.  A rule stored
# before the check (0.1.0) is skipped by classify() with a WARNING.  With the
# worst rules that are accepted, classify() of any message stays in
# milliseconds (the message is looked at up to 4 kB).  Runs in the harness's
# cluster, in a database of its own.
. "$(dirname "$0")/../lib/tap.sh"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack_rules" -c "CREATE DATABASE attack_rules" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack_rules" >/dev/null 2>&1' EXIT
DB=attack_rules
q "CREATE EXTENSION taskguard" >/dev/null

sqlstate() {  # the SQLSTATE of a failing statement ("" when it succeeds)
    psql -X -At -d attack_rules -c "\set VERBOSITY verbose" -c "$1" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p'
}
rule() {  # rule PATTERN-SQL-EXPRESSION: insert a rule with this message_pattern
    echo "INSERT INTO taskguard.classification_rule (message_pattern, failure_type) VALUES ($1, 'UNKNOWN')"
}
refused() {  # refused PATTERN-SQL DESCRIPTION
    local err
    is "$(sqlstate "$(rule "$1")")" "22023" "refused: $2"
    err=$(psql -X -At -d attack_rules -c "$(rule "$1")" 2>&1 >/dev/null)
    case "$err" in *"message_pattern is refused"*) ok 0 "  the error names message_pattern";;
                   *) ok 1 "  the error names message_pattern (got: $err)";; esac
}
accepted() {  # accepted PATTERN-SQL DESCRIPTION
    is "$(sqlstate "$(rule "$1")")" "" "accepted: $2"
}

# the attack of the review, and its relatives
refused "'((\\w|\\s){1,100}){1,60}\\1x'" "the review's rule (back-reference, 12,000 atoms)"
refused "'(a|b)\\1'" "a back-reference"
refused "'(a)(b)(c)(d)(e)(f)(g)(h)(i)\\9'" "a back-reference to group 9"
refused "'(?:(x+))\\1'" "a back-reference inside a non-capturing group"
refused "'((\\w|\\s){1,100}){1,60}x'" "nested bounds expanding to 12,000 atoms"
refused "'(\\w{1,100}){1,60}'" "nested bounds expanding to 6,000 atoms"
refused "repeat('\\w{1,255}', 8)" "a sequence of bounds expanding to 2,040 atoms"
refused "'((((a{10}){10}){10}){10})'" "four nested bounds"
refused "repeat('a', 1001)" "a pattern of 1,001 bytes"
refused "repeat('a', 100000)" "a pattern of 100 kB (compiling it took 73 s)"
is "$(sqlstate "UPDATE taskguard.classification_rule SET message_pattern = 'x'")" "" "an UPDATE to a sane pattern"
accepted "'(x)y'" "a group without back-reference"
is "$(sqlstate "UPDATE taskguard.classification_rule SET message_pattern = '(x)\\1'")" "22023" \
   "an UPDATE to a back-reference is refused too"
is "$(sqlstate "$(rule "'('")")" "2201B" "a pattern that does not compile: invalid_regular_expression (as before)"
is "$(sqlstate "$(rule "'a{1,256}'")")" "2201B" "a bound over 255: invalid_regular_expression"

# bad input of the column and of the check function
is "$(sqlstate "INSERT INTO taskguard.classification_rule (error_type_pattern, message_pattern, failure_type) VALUES ('E', NULL, 'UNKNOWN')")" \
   "" "NULL message_pattern (another condition): accepted"
accepted "''" "an empty pattern"
is "$(sqlstate "$(rule "'[\\1]'")")" "2201B" "\\1 inside a bracket: invalid_regular_expression"
accepted "E'\\\\{1,200}'" "an escaped brace is a literal"
is "$(q "SELECT taskguard._check_message_pattern(NULL)")" "t" "_check_message_pattern(NULL) is true"
is "$(sqlstate "SELECT taskguard._check_message_pattern(repeat('é', 600))")" "22023" \
   "_check_message_pattern counts bytes (600 characters, 1,200 bytes)"

# the worst that is accepted stays fast
accepted "'((\\w|\\s){1,10}){1,99}x'" "nested bounds expanding to 1,981 atoms"
accepted "'(\\w{1,30}){1,30}x'" "nested bounds expanding to 901 atoms"
accepted "repeat('\\w{1,250}', 8)" "a sequence of bounds expanding to 2,000 atoms"
accepted "repeat('(\\w|\\s){1,99}', 10)" "ten bounded groups, 1,980 atoms"
accepted "'(a|aa)+\$'" "nested unbounded repetition (no back-reference: automata)"
accepted "'(.*a){25}'" "(.*a){25}"
accepted "'(?=(\\w+\\s?)+!)'" "a lookahead with nested repetition"
accepted "repeat('a', 1000)" "a pattern of 1,000 bytes"
psql -X -q -d attack_rules <<'SQL' >/dev/null
CREATE FUNCTION public.worst_classify_ms(msgs text[], n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; w numeric := 0; m text;
BEGIN
    PERFORM taskguard.classify('E', 'load the rules (compiled once per backend)');
    FOREACH m IN ARRAY msgs LOOP
        FOR i IN 1..n LOOP
            t0 := clock_timestamp();
            PERFORM taskguard.classify('E', m);
            w := greatest(w, extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
    RETURN round(w, 1);
END $$;
SQL
msgs="ARRAY[repeat('a', 1200), repeat('a', 5000), substr(repeat('ab c-', 1000), 1, 5000), repeat('a ', 2500),
            (SELECT string_agg(md5(i::text), ' ') FROM generate_series(1, 150) i), repeat('x', 1000000),
            repeat('worker-', 600) || 'x']"
worst=$(q "SELECT public.worst_classify_ms($msgs, 5)")
echo "# classify() of 7 messages up to 1 MB with $(q "SELECT count(*) FROM taskguard.classification_rule") rules at the limits: worst $worst ms"
ok "$(q "SELECT ($worst < 100)::int # 1")" "classify() stays under 100 ms per call with every accepted worst case (worst $worst ms)"

# a rule stored before 0.2.0 checked patterns: skipped, with a warning
q "ALTER TABLE taskguard.classification_rule DISABLE TRIGGER classification_rule_check" >/dev/null
id=$(psql -X -q -At -v ON_ERROR_STOP=1 -d attack_rules -c "INSERT INTO taskguard.classification_rule (message_pattern, failure_type) VALUES ('((\\w|\\s){1,100}){1,60}\\1x', 'BUSINESS_LOGIC_VIOLATION') RETURNING id")
q "ALTER TABLE taskguard.classification_rule ENABLE TRIGGER classification_rule_check" >/dev/null
out=$(psql -X -At -d attack_rules -c "SELECT (taskguard.classify('E', repeat('ab ', 400) || 'x')).failure_type" 2>&1)
case "$out" in *"classification_rule $id: message_pattern is refused"*"rule ignored"*) ok 0 "an old explosive rule is skipped with a WARNING naming it";;
               *) ok 1 "an old explosive rule is skipped with a WARNING naming it (got: $out)";; esac
case "$out" in *BUSINESS_LOGIC_VIOLATION*) ok 1 "  and it decides nothing";; *) ok 0 "  and it decides nothing";; esac
worst=$(q "SELECT public.worst_classify_ms($msgs, 2)" 2>/dev/null)
ok "$(q "SELECT ($worst < 100)::int # 1")" "  classify() stays fast with it stored (worst $worst ms)"
done_testing
