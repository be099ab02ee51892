-- tforge.semver's comparison operators move from schema tforge to
-- pg_catalog (see sql/install/10_semver.sql): "version >= '1.2.0'" works
-- with the default search_path and no look-alike operator on a caller's
-- path can capture them. SET SCHEMA keeps each operator's OID, so the
-- operator classes, the range type, the aggregates' sort operators and the
-- indexes built on them are untouched. The registry functions that named
-- them as OPERATOR(tforge.x) are replaced in 0.2.0/40_registry.sql.
ALTER OPERATOR tforge.=  (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
ALTER OPERATOR tforge.<> (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
ALTER OPERATOR tforge.<  (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
ALTER OPERATOR tforge.<= (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
ALTER OPERATOR tforge.>  (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
ALTER OPERATOR tforge.>= (tforge.semver, tforge.semver) SET SCHEMA pg_catalog;
