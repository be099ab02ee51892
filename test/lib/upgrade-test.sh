#!/usr/bin/env bash
# ALTER EXTENSION tforge UPDATE from every earlier version keeps the data and
# yields the schema of a fresh install.
#
# For 0.1.0 (the oldest supported version; its install script is frozen as
# sql/tforge--0.1.0.sql): install it, fill every component
# (test/upgrade/populate-0.1.0.sql), fingerprint the data, update to the
# current version, fingerprint again; then compare the catalog
# (test/upgrade/schema.sql: every member, function definition, column,
# constraint, index, trigger, ACL, comment, enum label, operator, operator
# class and config_dump mark) with a fresh install in another database.
# Runs against the cluster in PGHOST/PGPORT; exits non-zero on a difference.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d /tmp/tforge-upgrade.XXXXXX)
trap 'rm -rf "$tmp"; psql -qX -d postgres -c "DROP DATABASE IF EXISTS tforge_upgrade_old WITH (FORCE)" -c "DROP DATABASE IF EXISTS tforge_upgrade_new WITH (FORCE)" >/dev/null 2>&1' EXIT
q() { psql -qX -v ON_ERROR_STOP=1 "$@"; }
status=0

q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS tforge_upgrade_old" -c "DROP DATABASE IF EXISTS tforge_upgrade_new" \
	-c 'CREATE DATABASE tforge_upgrade_old' -c 'CREATE DATABASE tforge_upgrade_new' >/dev/null || exit 1
current=$(q -At -d tforge_upgrade_new -c "SELECT default_version FROM pg_available_extensions WHERE name = 'tforge'") || exit 1

q -d tforge_upgrade_old -c "CREATE EXTENSION tforge VERSION '0.1.0'" >/dev/null || exit 1
q -d tforge_upgrade_old -f test/upgrade/populate-0.1.0.sql >/dev/null || exit 1
q -At -d tforge_upgrade_old -f test/upgrade/fingerprint.sql >"$tmp/data.before" || exit 1
q -d tforge_upgrade_old -c 'ALTER EXTENSION tforge UPDATE' || exit 1
got=$(q -At -d tforge_upgrade_old -c "SELECT extversion FROM pg_extension WHERE extname = 'tforge'")
if [ "$got" != "$current" ]; then
	echo "ALTER EXTENSION tforge UPDATE from 0.1.0 reached $got, not $current"
	status=1
fi
q -At -d tforge_upgrade_old -f test/upgrade/fingerprint.sql >"$tmp/data.after" || exit 1
if ! diff -u "$tmp/data.before" "$tmp/data.after"; then
	echo "the upgrade from 0.1.0 changed the data above"
	status=1
fi
echo "data: $(wc -l <"$tmp/data.before") tables and sequences intact"

q -d tforge_upgrade_new -c 'CREATE EXTENSION tforge' >/dev/null || exit 1
q -At -d tforge_upgrade_new -f test/upgrade/schema.sql >"$tmp/schema.fresh" || exit 1
q -At -d tforge_upgrade_old -f test/upgrade/schema.sql >"$tmp/schema.upgraded" || exit 1
if ! diff -u --label "fresh $current" --label "0.1.0 updated to $current" "$tmp/schema.fresh" "$tmp/schema.upgraded"; then
	echo "0.1.0 + ALTER EXTENSION UPDATE differs from a fresh install of $current (lines above)"
	status=1
fi
echo "schema: $(grep -c '' "$tmp/schema.fresh") lines compared ($(grep -c '^member ' "$tmp/schema.fresh") extension members)"
exit $status
