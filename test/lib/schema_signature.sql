-- schema_signature.sql — every fact of the installed taskguard schema, one
-- line each, sorted: what `ALTER EXTENSION taskguard UPDATE` must leave equal
-- to a fresh install (test/t/upgrade.sh diffs two databases' outputs).
-- Definitions come from the pg_get_*def functions, so formatting of the
-- scripts does not matter; data, OIDs and sequence positions are left out.
-- Run with psql -XAt; the search_path is pinned so that names print the same.
SET search_path = pg_catalog;

WITH ext AS (
    SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'taskguard'
), members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), facts(line) AS (
    -- routines: the whole definition (volatility, strictness, SET, SECURITY, body), owner, ACL
    SELECT format('function %s kind=%s def=%s acl=%s', p.oid::regprocedure, p.prokind,
                  CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE md5(pg_get_functiondef(p.oid)) END,
                  p.proacl)
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT format('function %s comment=%s', p.oid::regprocedure, obj_description(p.oid, 'pg_proc'))
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
     WHERE obj_description(p.oid, 'pg_proc') IS NOT NULL
    -- relations: kind, options, row security, ACL
    UNION ALL
    SELECT format('relation %s kind=%s persistence=%s options=%s rls=%s force=%s acl=%s',
                  r.oid::regclass, r.relkind, r.relpersistence, r.reloptions,
                  r.relrowsecurity, r.relforcerowsecurity, r.relacl)
      FROM rels r
    UNION ALL
    SELECT format('relation %s comment=%s', r.oid::regclass, obj_description(r.oid, 'pg_class'))
      FROM rels r WHERE obj_description(r.oid, 'pg_class') IS NOT NULL
    -- columns in their order (a row type's order is part of the API: claim() returns task rows)
    UNION ALL
    SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s collation=%s acl=%s',
                  r.oid::regclass, a.attname,
                  (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = r.oid AND b.attnum > 0
                      AND NOT b.attisdropped AND b.attnum <= a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                  a.attcollation, a.attacl)
      FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
     WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
    UNION ALL
    SELECT format('view %s %s', r.oid::regclass, md5(pg_get_viewdef(r.oid)))
      FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('constraint %s.%s %s', r.oid::regclass, c.conname, pg_get_constraintdef(c.oid))
      FROM rels r JOIN pg_constraint c ON c.conrelid = r.oid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(t.oid))
      FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s',
                  r.oid::regclass, p.polname, p.polcmd, p.polpermissive,
                  (SELECT array_agg(x ORDER BY x) FROM unnest(p.polroles::regrole[]) x),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
      FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
    UNION ALL
    SELECT format('sequence %s type=%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement,
                  s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
      FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
    -- types: enum labels in order, domains with their constraints
    UNION ALL
    SELECT format('type %s kind=%s acl=%s', t.oid::regtype, t.typtype, t.typacl)
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('type %s comment=%s', t.oid::regtype, obj_description(t.oid, 'pg_type'))
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
     WHERE obj_description(t.oid, 'pg_type') IS NOT NULL
    UNION ALL
    SELECT format('enum %s %s', t.oid::regtype,
                  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                     FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
     WHERE t.typtype = 'e'
    UNION ALL
    SELECT format('domain %s base=%s notnull=%s check=%s', t.oid::regtype,
                  format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                  (SELECT string_agg(pg_get_constraintdef(c.oid), ' AND ' ORDER BY c.conname)
                     FROM pg_constraint c WHERE c.contypid = t.oid))
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
     WHERE t.typtype = 'd'
    -- anything else that belongs to the extension (casts, operators, ...)
    UNION ALL
    SELECT format('member %s', pg_describe_object(m.classid, m.objid, 0))
      FROM members m
     WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_type'::regclass)
    -- what pg_dump keeps the data of (pg_extension_config_dump)
    UNION ALL
    SELECT format('config_dump %s where=%s', c::regclass, w)
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS x(c, w)
    UNION ALL
    SELECT format('schema taskguard acl=%s', n.nspacl) FROM pg_namespace n WHERE n.nspname = 'taskguard'
)
SELECT line FROM facts ORDER BY line COLLATE "C";
