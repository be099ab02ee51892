-- The schema of the installed tforge, one line per fact, in a stable order:
-- what an ALTER EXTENSION tforge UPDATE must leave identical to a fresh
-- install of the same version (test/lib/upgrade-test.sh diffs the two).
-- Object identities are written by name (regclass, regprocedure,
-- pg_describe_object), never by OID.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'tforge'),
members AS (
  SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (SELECT c.oid::regclass::text AS name, c.* FROM pg_class c
          WHERE c.relnamespace = 'tforge'::regnamespace),
funcs AS (SELECT p.oid::regprocedure::text AS name, p.* FROM pg_proc p
           JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid),
acl AS (
  SELECT a.obj, string_agg(a.grantee || '=' || a.privs, ' ' ORDER BY a.grantee) AS acl
    FROM (SELECT x.obj, coalesce(x.grantee::regrole::text, 'PUBLIC') AS grantee,
                 string_agg(x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END, ',' ORDER BY x.privilege_type) AS privs
            FROM (SELECT 'rel ' || r.name AS obj, (aclexplode(r.relacl)).* FROM rels r WHERE r.relacl IS NOT NULL
                  UNION ALL
                  SELECT 'fn ' || f.name, (aclexplode(f.proacl)).* FROM funcs f WHERE f.proacl IS NOT NULL
                  UNION ALL
                  SELECT 'schema tforge', (aclexplode(n.nspacl)).* FROM pg_namespace n WHERE n.nspname = 'tforge' AND n.nspacl IS NOT NULL
                  UNION ALL
                  SELECT 'type ' || t.oid::regtype::text, (aclexplode(t.typacl)).* FROM pg_type t
                   WHERE t.typnamespace = 'tforge'::regnamespace AND t.typacl IS NOT NULL) x
           GROUP BY x.obj, x.grantee) a
   GROUP BY a.obj
)
SELECT line FROM (
  -- every member of the extension
  SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid) AS line FROM members m
  UNION ALL
  -- every comment on a member, its columns included
  SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
    FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
  -- functions: the whole definition (volatility, strictness, security,
  -- parallel safety, cost, rows, SET clauses, body)
  UNION ALL
  SELECT 'function ' || f.name || E'\n' || pg_get_functiondef(f.oid) FROM funcs f WHERE f.prokind <> 'a'
  UNION ALL
  SELECT 'aggregate ' || f.name || ': ' || concat_ws(' ', a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure,
         a.aggcombinefn::regprocedure, a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure,
         a.aggsortop::regoperator, a.aggtranstype::regtype, a.agginitval, a.aggfinalmodify, f.proparallel)
    FROM funcs f JOIN pg_aggregate a ON a.aggfnoid = f.oid
  -- tables, views, sequences, indexes
  UNION ALL
  SELECT 'relation ' || r.name || ': kind ' || r.relkind::text || ' persistence ' || r.relpersistence::text
         || ' replident ' || r.relreplident::text || ' options ' || coalesce(r.reloptions::text, '-')
         || ' owner super ' || (SELECT rolsuper FROM pg_roles WHERE oid = r.relowner)
    FROM rels r
  UNION ALL
  SELECT format('column %s.%s #%s: %s%s%s%s%s%s storage %s%s', r.name, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                CASE WHEN a.atthasdef THEN ' default ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END,
                CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END,
                CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END,
                CASE WHEN a.attcollation <> 0 THEN ' collate ' || a.attcollation::regcollation ELSE '' END,
                a.attstorage::text,
                CASE WHEN a.attcompression <> '' THEN ' compression ' || a.attcompression::text ELSE '' END)
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE r.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
  UNION ALL
  SELECT format('constraint %s %s: %s%s', coalesce(c.conrelid::regclass::text, c.contypid::regtype::text), c.conname,
                pg_get_constraintdef(c.oid), CASE WHEN c.condeferrable THEN ' deferrable' ELSE '' END)
    FROM pg_constraint c WHERE c.connamespace = 'tforge'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels r ON r.oid = i.indrelid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
    FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'rule ' || pg_get_ruledef(w.oid) FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class WHERE w.rulename <> '_RETURN'
  UNION ALL
  SELECT 'view ' || r.name || E'\n' || pg_get_viewdef(r.oid) FROM rels r WHERE r.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('sequence %s: %s start %s inc %s min %s max %s cache %s cycle %s', s.seqrelid::regclass, s.seqtypid::regtype,
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
  UNION ALL
  SELECT 'acl ' || a.obj || ': ' || a.acl FROM acl a
  -- types
  UNION ALL
  SELECT format('type %s: %s %s len %s byval %s align %s storage %s in %s out %s recv %s send %s notnull %s default %s',
                t.oid::regtype, t.typtype, t.typcategory, t.typlen, t.typbyval, t.typalign, t.typstorage,
                t.typinput::regproc, t.typoutput::regproc, t.typreceive::regproc, t.typsend::regproc,
                t.typnotnull, coalesce(t.typdefault, '-'))
    FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
  UNION ALL
  SELECT format('enum %s: %s', e.enumtypid::regtype, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder))
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = 'tforge'::regnamespace
   GROUP BY e.enumtypid
  UNION ALL
  SELECT format('range %s: subtype %s opclass %s canonical %s diff %s multirange %s', r.rngtypid::regtype, r.rngsubtype::regtype,
                (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc), r.rngcanonical::regproc, r.rngsubdiff::regproc,
                r.rngmultitypid::regtype)
    FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid WHERE t.typnamespace = 'tforge'::regnamespace
  -- operators, operator classes and families
  UNION ALL
  SELECT format('operator %s: code %s commutator %s negator %s restrict %s join %s hashes %s merges %s',
                o.oid::regoperator, o.oprcode::regprocedure, nullif(o.oprcom, 0)::regoperator, nullif(o.oprnegate, 0)::regoperator,
                o.oprrest::regproc, o.oprjoin::regproc, o.oprcanhash, o.oprcanmerge)
    FROM pg_operator o JOIN members m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid
  UNION ALL
  SELECT format('opclass %s.%s using %s: family %s type %s default %s', c.opcnamespace::regnamespace, c.opcname,
                (SELECT amname FROM pg_am WHERE oid = c.opcmethod), f.opfname, c.opcintype::regtype, c.opcdefault)
    FROM pg_opclass c JOIN pg_opfamily f ON f.oid = c.opcfamily
    JOIN members m ON m.classid = 'pg_opclass'::regclass AND m.objid = c.oid
  UNION ALL
  SELECT format('amop %s.%s: strategy %s %s purpose %s', f.opfnamespace::regnamespace, f.opfname, ao.amopstrategy,
                ao.amopopr::regoperator, ao.amoppurpose)
    FROM pg_amop ao JOIN pg_opfamily f ON f.oid = ao.amopfamily WHERE f.opfnamespace = 'tforge'::regnamespace
  UNION ALL
  SELECT format('amproc %s.%s: %s (%s,%s) %s', f.opfnamespace::regnamespace, f.opfname, ap.amprocnum,
                ap.amproclefttype::regtype, ap.amprocrighttype::regtype, ap.amproc::regprocedure)
    FROM pg_amproc ap JOIN pg_opfamily f ON f.oid = ap.amprocfamily WHERE f.opfnamespace = 'tforge'::regnamespace
  -- what pg_dump keeps
  UNION ALL
  SELECT format('config_dump %s: %s', c::regclass, coalesce(e.extcondition[i], ''))
    FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(c, i) WHERE e.extname = 'tforge'
  UNION ALL
  SELECT 'extension version ' || extversion || ' relocatable ' || extrelocatable || ' schema ' || extnamespace::regnamespace
    FROM pg_extension WHERE extname = 'tforge'
  -- the roles' memberships
  UNION ALL
  SELECT format('membership %s in %s', m.member::regrole, m.roleid::regrole)
    FROM pg_auth_members m
   WHERE m.roleid IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'tforge\_%')
) facts
ORDER BY line COLLATE "C";
