#!/usr/bin/env bash
# Makes a private copy of the system's PostgreSQL 15 in DIR, for
# TFORGE_DESTDIR=DIR: PostgreSQL finds its share and lib directories relative
# to its binaries, so several checkouts can each install and test their own
# build of tforge without touching the system's extension directory.
#   test/lib/private-pg.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
chmod -R a+rX "$dir"
